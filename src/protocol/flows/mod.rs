//! Protocol clients: each builds the request for one kind of step, deviations included.

pub mod ciba;
pub mod discovery;
pub mod introspection;
pub mod resource;
pub mod token;
pub mod token_cache;
pub mod token_exchange;

use crate::model::AuthChoice;
use crate::protocol::auth::{self, Credentials};
use crate::protocol::exchange::RequestContext;
use crate::protocol::http::{Request, Value};

/// A POST of `form` (whose `grant_type` is `grant_type`) to the token endpoint, authenticated as
/// `choice` says: what a CIBA poll and a token exchange share.
fn grant_request(
    endpoint: &url::Url,
    mut form: Vec<(String, Value)>,
    grant_type: &str,
    choice: AuthChoice,
    creds: &Credentials<'_>,
) -> (Request, RequestContext) {
    let mut headers = vec![("Accept".to_string(), Value::Plain("application/json".into()))];
    let used = auth::apply(choice, creds, &mut headers, &mut form);
    let mut request = Request::new(reqwest::Method::POST, endpoint.clone()).form(form);
    request.headers = headers;
    let context = RequestContext { auth: Some(used), grant_type: Some(grant_type.into()), ..RequestContext::default() };
    (request, context)
}
