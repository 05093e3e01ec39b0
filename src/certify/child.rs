//! The client command under certification: started with its configuration in the environment,
//! its output kept (the last lines, bounded), and always ended — with its process group, so a
//! wrapper script's children go too.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::model::client_suite::Observe;
use crate::protocol::observation::ClientEnd;

/// Lines of the client's output kept for the report.
const TAIL_LINES: usize = 20;
/// Characters of one kept line.
const LINE_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
#[error("cannot start the client command `{command}`: {reason}")]
pub struct SpawnError {
    pub command: String,
    pub reason: String,
}

pub struct Client {
    child: tokio::process::Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Client {
    pub fn spawn(command: &[String], env: &[(String, String)]) -> Result<Self, SpawnError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| SpawnError { command: String::new(), reason: "no command after `--`".into() })?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| SpawnError { command: command.join(" "), reason: e.to_string() })?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_tail(out, tail.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_tail(err, tail.clone()));
        }
        Ok(Self { child, tail })
    }

    /// Waits as `observe` says, then ends the client if it still runs.
    pub async fn watch(mut self, observe: Observe) -> (ClientEnd, Vec<String>) {
        let waited = tokio::time::timeout(observe.limit(), self.child.wait()).await;
        let end = match waited {
            Ok(Ok(status)) => ClientEnd::Exited { code: status.code() },
            Ok(Err(_)) | Err(_) => {
                self.end().await;
                ClientEnd::Ended
            }
        };
        // Let the readers drain what the client wrote last.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tail = self.tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default();
        (end, tail)
    }

    async fn end(&mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }

    fn kill_group(&self) {
        #[cfg(unix)]
        if let Some(pid) = self.child.id().and_then(|p| libc::pid_t::try_from(p).ok()).filter(|p| *p > 1) {
            // The whole group (the child leads it: `process_group(0)`), so a wrapper script's
            // children go too. Not the `kill` program: some spellings of `kill -SIG -PGID` mean
            // "every process" to some of its implementations.
            // SAFETY: killpg takes plain integers and touches no memory of ours; `pid` is the
            // group our own child leads, never 0 or 1.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}

/// A certify run stopped early (Ctrl-C drops the observation) still ends the client's group;
/// `kill_on_drop` alone would end only the command itself.
impl Drop for Client {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Reads the stream to its end in bounded memory: the last lines, each cut at [`LINE_CHARS`].
async fn keep_tail(mut stream: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let push = |line: &mut Vec<u8>| {
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(String::from_utf8_lossy(line).chars().take(LINE_CHARS).collect());
        line.clear();
    };
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            match b {
                b'\n' => push(&mut line),
                _ if line.len() < LINE_CHARS * 4 => line.push(b),
                _ => {}
            }
        }
    }
    if !line.is_empty() {
        push(&mut line);
    }
}
