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

/// A call with a DPoP-bound token (RFC 9449 §7.1): `Authorization: DPoP`; the caller adds the proof.
pub fn build_dpop(url: &Url, token: &Secret) -> (Request, RequestContext) {
    let request = Request::new(Method::GET, url.clone())
        .header("Authorization", Value::Secret(Secret::new(format!("DPoP {}", token.expose()))));
    (request, RequestContext { auth: Some(AuthUsed::Dpop), ..RequestContext::default() })
}
