//! The harness's own JWKS server on 127.0.0.1: it publishes the JWKS of clients registered "by
//! URL" (`jwks_url: serve`), and, for `jku` negative cases, a JWKS the server under test must never
//! fetch — every fetch is counted so a check can say whether one happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::support::http_server::{self, Handle, Reply, Request, Server};
use serde_json::Value;
use url::Url;

/// How long a server may cache what the harness serves, unless a path says otherwise.
const DEFAULT_MAX_AGE_SECS: u64 = 300;

#[derive(Default)]
struct Documents {
    by_path: Mutex<HashMap<String, (Value, u64)>>,
    fetches: Mutex<HashMap<String, usize>>,
}

struct Responder(Arc<Documents>);

impl Handle for Responder {
    fn handle(&self, request: &Request) -> Reply {
        let path = request.url.path().to_string();
        *self.0.fetches.lock().unwrap_or_else(|e| e.into_inner()).entry(path.clone()).or_default() += 1;
        match self.0.by_path.lock().unwrap_or_else(|e| e.into_inner()).get(&path) {
            Some((doc, max_age)) => {
                Reply::new(200).insert_header("Cache-Control", &format!("public, max-age={max_age}")).set_body_json(doc)
            }
            None => Reply::new(404),
        }
    }
}

pub struct JwksServer {
    server: Server,
    docs: Arc<Documents>,
}

impl JwksServer {
    /// Starts on 127.0.0.1, on `port` or a free one.
    pub async fn start(port: Option<u16>) -> std::io::Result<Self> {
        let docs = Arc::new(Documents::default());
        let server = http_server::serve(port, Arc::new(Responder(docs.clone())), None)?;
        Ok(Self { server, docs })
    }

    /// Publishes `jwks` at `path` and returns its URL.
    pub fn publish(&self, path: &str, jwks: Value) -> Url {
        self.publish_with_max_age(path, jwks, DEFAULT_MAX_AGE_SECS)
    }

    /// Publishes `jwks` at `path`, cacheable for `max_age_secs` (`Cache-Control: max-age`).
    pub fn publish_with_max_age(&self, path: &str, jwks: Value, max_age_secs: u64) -> Url {
        self.docs.by_path.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_string(), (jwks, max_age_secs));
        self.url(path)
    }

    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.server.origin(false)))
            .unwrap_or_else(|_| unreachable!("a 127.0.0.1 origin is a URL"))
    }

    /// The URL under which a client's JWKS is served.
    pub fn client_path(client_name: &str) -> String {
        format!("/clients/{client_name}/jwks.json")
    }

    /// How many times `path` was requested.
    pub fn fetches(&self, path: &str) -> usize {
        self.docs.fetches.lock().unwrap_or_else(|e| e.into_inner()).get(path).copied().unwrap_or(0)
    }
}

/// Publishes the JWKS of every target client with `jwks_url: serve`; returns (client, URL).
pub fn publish_served_clients(target: &crate::model::Target, server: &JwksServer) -> Vec<(String, Url)> {
    target
        .clients
        .iter()
        .filter(|(_, c)| c.serve_jwks)
        .filter_map(|(name, c)| {
            let key = c.key.as_ref()?;
            Some((name.clone(), server.publish(&JwksServer::client_path(name), key.jwks())))
        })
        .collect()
}
