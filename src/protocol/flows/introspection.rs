//! Token introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1): a form POST of `token`
//! (and `token_type_hint`), by an authenticated client.

use reqwest::Method;
use url::Url;

use crate::model::AuthChoice;
use crate::model::Client;
use crate::protocol::auth::{self, Credentials};
use crate::protocol::exchange::{AuthUsed, RequestContext, TokenFacts};
use crate::protocol::http::{Request, Value};
use crate::support::secret::Secret;

/// How the caller authenticates, and as whom.
pub struct Caller<'a> {
    pub client: &'a Client,
    pub auth: AuthChoice,
    /// Replaces the caller's secret (a wrong one, for negative cases).
    pub secret: Option<&'a Secret>,
    pub assertion: Option<&'a Secret>,
    /// SMART 2.2: a bearer token of the caller's, sent instead of its credentials.
    pub bearer: Option<&'a Secret>,
}

pub fn build(
    endpoint: &Url,
    caller: &Caller<'_>,
    token: &Secret,
    token_type_hint: Option<&str>,
    subject: Option<TokenFacts>,
    jwt: bool,
) -> (Request, RequestContext) {
    let mut form = vec![("token".to_string(), Value::Secret(token.clone()))];
    if let Some(hint) = token_type_hint {
        form.push(("token_type_hint".into(), Value::Plain(hint.into())));
    }
    let accept = if jwt { crate::model::INTROSPECTION_JWT } else { "application/json" };
    let mut headers = vec![("Accept".to_string(), Value::Plain(accept.into()))];
    let used = match caller.bearer {
        Some(bearer) => {
            headers.push(("Authorization".into(), Value::Secret(Secret::new(format!("Bearer {}", bearer.expose())))));
            AuthUsed::Bearer
        }
        None => {
            let secret = caller.secret.or(caller.client.secret.as_ref());
            let creds = Credentials { client_id: &caller.client.client_id, secret, assertion: caller.assertion };
            auth::apply(caller.auth, &creds, &mut headers, &mut form)
        }
    };
    let mut request = Request::new(Method::POST, endpoint.clone()).form(form);
    request.headers = headers;
    let context = RequestContext {
        auth: Some(used),
        subject,
        client_id: Some(caller.client.client_id.clone()),
        ..RequestContext::default()
    };
    (request, context)
}

/// The server declined to revoke the token's type: RFC 7009 §2.2.1 lets a server that does not
/// revoke, say, access tokens answer 400 `unsupported_token_type` (it may revoke refresh tokens
/// only). A conformant answer, after which the token is simply still live.
pub fn revocation_declined(response: &crate::protocol::exchange::RecordedResponse) -> bool {
    response.status == 400 && response.json_str("error") == Some("unsupported_token_type")
}
