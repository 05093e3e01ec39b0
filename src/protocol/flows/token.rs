//! Token requests (RFC 6749 §4.4 client_credentials), built as the good request plus the
//! deviations a scenario asks for.

use reqwest::Method;
use url::Url;

use crate::model::Client;
use crate::model::{AuthChoice, FormParam, HttpMethod, TokenSpec};
use crate::protocol::auth::{self, Credentials};
use crate::protocol::exchange::{Deviations, RequestContext};
use crate::protocol::http::{Request, Value};
use crate::support::secret::Secret;

pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// Builds the token request for `spec` on behalf of `client`; `scope` is what the step asks
/// for, already in the server's names; `assertion` is the signed client assertion when the
/// client authenticates with private_key_jwt.
pub fn build(
    endpoint: &Url,
    client: &Client,
    spec: &TokenSpec,
    scope: Option<String>,
    assertion: Option<&Secret>,
) -> (Request, RequestContext) {
    let grant = spec.grant.clone().unwrap_or_else(|| CLIENT_CREDENTIALS.to_string());
    let mut form: Vec<(String, Value)> = Vec::new();
    if !spec.omit.contains(&FormParam::GrantType) {
        form.push(("grant_type".into(), Value::Plain(grant.clone())));
    }
    let scope = scope.filter(|_| !spec.omit.contains(&FormParam::Scope));
    if let Some(s) = &scope {
        form.push(("scope".into(), Value::Plain(s.clone())));
    }
    // A deliberately wrong secret is random: the real one must never reach a failed-login log.
    let wrong = Secret::new(crate::protocol::auth::random_secret());
    let secret = if spec.wrong_secret { Some(&wrong) } else { client.secret.as_ref() };
    let client_id = spec.client_id.as_deref().unwrap_or(&client.client_id);
    let choice = spec.auth.unwrap_or(AuthChoice::from(client.auth));
    let mut headers = vec![("Accept".to_string(), Value::Plain("application/json".into()))];
    let used = auth::apply(choice, &Credentials { client_id, secret, assertion }, &mut headers, &mut form);
    for omitted in &spec.omit {
        let name = match omitted {
            FormParam::ClientAssertion => "client_assertion",
            FormParam::ClientAssertionType => "client_assertion_type",
            FormParam::GrantType | FormParam::Scope => continue,
        };
        form.retain(|(k, _)| k != name);
    }
    // A scenario parameter replaces one of the same name (e.g. a wrong client_assertion_type).
    for (k, v) in &spec.params {
        form.retain(|(name, _)| name != k);
        form.push((k.clone(), Value::Plain(v.clone())));
    }

    let method = match spec.method.unwrap_or(HttpMethod::Post) {
        HttpMethod::Post => Method::POST,
        HttpMethod::Get => Method::GET,
    };
    let request = if method == Method::GET {
        // A GET carries the parameters in the query, as a careless client would.
        let mut url = endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in &form {
                if let Value::Plain(v) = v {
                    query.append_pair(k, v);
                }
            }
        }
        let mut r = Request::new(method, url);
        r.headers = headers;
        r
    } else {
        let mut r = Request::new(method, endpoint.clone()).form(form);
        r.headers = headers;
        r
    };
    let context = RequestContext {
        auth: Some(used),
        grant_type: (!spec.omit.contains(&FormParam::GrantType)).then_some(grant),
        requested_scope: scope,
        client_id: Some(client.client_id.clone()),
        deviations: Deviations {
            // Wrong only if a secret went out: a client that authenticated another way sent
            // no wrong secret, and its refusal says nothing about one.
            wrong_secret: spec.wrong_secret && used.sends_secret(),
            unknown_client: spec.client_id.is_some(),
            unregistered_method: choice.method().is_some_and(|m| !client.methods.contains(&m)),
            ..Deviations::default()
        },
        credentials_need_encoding: used.used_authorization_header()
            && (auth::form_encoding_changes(client_id)
                || secret.is_some_and(|s| auth::form_encoding_changes(s.expose()))),
        ..RequestContext::default()
    };
    (request, context)
}
