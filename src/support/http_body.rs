//! Reading an HTTP response body without trusting its size: the bytes up to a cap, and whether
//! the server sent more. A body is read chunk by chunk, so a server that streams gigabytes costs
//! at most the cap (reqwest's `bytes()` would buffer all of it first).

/// At most `cap` bytes of a body, and whether more followed.
pub struct Capped {
    pub body: Vec<u8>,
    pub truncated: bool,
}

/// Reads `response`'s body up to `cap` bytes; stops reading at the first byte past it.
pub async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Capped, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped { body, truncated: true });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped { body, truncated: false })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ANNOUNCED: usize = 200 * 1024 * 1024;

    /// A server announcing a 200 MB body and writing it until the reader goes away.
    async fn flooding_server(written: Arc<AtomicUsize>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {ANNOUNCED}\r\n\r\n");
            let _ = stream.write_all(header.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            while written.load(Ordering::Relaxed) < ANNOUNCED {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
                written.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_cut_there_and_not_read_on() {
        let written = Arc::new(AtomicUsize::new(0));
        let addr = flooding_server(written.clone()).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut response = client.get(format!("http://{addr}/")).send().await.unwrap();
        let capped = read_capped(&mut response, 100_000).await.unwrap();
        assert!(capped.truncated);
        assert_eq!(capped.body.len(), 100_000);
        drop(response);
        // The reader stopped: the server's writes fail long before the announced size.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(written.load(Ordering::Relaxed) < ANNOUNCED / 4, "{}", written.load(Ordering::Relaxed));
    }
}
