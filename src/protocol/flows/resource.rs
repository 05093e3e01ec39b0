//! Calls to the protected resource with a bearer token (RFC 6750 §2.1).

use reqwest::Method;
use url::Url;

use crate::protocol::exchange::{AuthUsed, RequestContext};
use crate::protocol::http::{Request, Value};
use crate::support::secret::Secret;

/// A token no server issued: well-formed enough to reach validation.
pub const GARBAGE_TOKEN: &str = "oauth-harness.garbage.0123456789abcdefghijklmnopqrstuvwxyz";

pub fn build(url: &Url, bearer: Option<&Secret>) -> (Request, RequestContext) {
    let mut request = Request::new(Method::GET, url.clone());
    let auth = match bearer {
        Some(token) => {
            request = request.header("Authorization", Value::Secret(Secret::new(format!("Bearer {}", token.expose()))));
            AuthUsed::Bearer
        }
        None => AuthUsed::None,
    };
    (request, RequestContext { auth: Some(auth), ..RequestContext::default() })
}
