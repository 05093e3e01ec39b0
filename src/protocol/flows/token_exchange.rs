//! RFC 8693 token exchange: the request (§2.1) that trades a subject token for a new one,
//! authenticated as the client is registered (the certificate goes with the TLS connection the
//! caller picks).

use url::Url;

use crate::model::{AuthChoice, SubjectTokenType};
use crate::protocol::auth::Credentials;
use crate::protocol::exchange::RequestContext;
use crate::protocol::http::{Request, Value};
use crate::support::secret::Secret;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: the token type identifiers the exchange uses.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const SAML2_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:saml2";

impl SubjectTokenType {
    /// The identifier sent as `subject_token_type`.
    pub fn uri(self) -> &'static str {
        match self {
            SubjectTokenType::AccessToken => ACCESS_TOKEN_TYPE,
            SubjectTokenType::Wrong => SAML2_TOKEN_TYPE,
        }
    }
}

/// The exchange request: `subject_token` as `subject_token_type`, for `audience` when given, asking
/// for an access token back.
pub fn build(
    endpoint: &Url,
    subject_token: &Secret,
    subject_token_type: SubjectTokenType,
    audience: Option<&str>,
    choice: AuthChoice,
    creds: &Credentials<'_>,
) -> (Request, RequestContext) {
    let mut form = vec![
        ("grant_type".to_string(), Value::Plain(GRANT_TYPE.into())),
        ("subject_token".to_string(), Value::Secret(subject_token.clone())),
        ("subject_token_type".to_string(), Value::Plain(subject_token_type.uri().into())),
        ("requested_token_type".to_string(), Value::Plain(ACCESS_TOKEN_TYPE.into())),
    ];
    if let Some(audience) = audience {
        form.push(("audience".to_string(), Value::Plain(audience.into())));
    }
    super::grant_request(endpoint, form, GRANT_TYPE, choice, creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_token_is_a_secret_and_the_types_are_rfc_8693_identifiers() {
        let url = Url::parse("https://127.0.0.1/token").unwrap();
        let creds = Credentials { client_id: "c", secret: None, assertion: None };
        let token = Secret::new("subject.jwt.value");
        let (request, context) =
            build(&url, &token, SubjectTokenType::Wrong, Some("api"), AuthChoice::TlsClientAuth, &creds);
        let recorded = request.record();
        let body = recorded.body.unwrap();
        assert!(!body.contains("subject.jwt.value"), "{body}");
        assert!(body.contains("subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Asaml2"), "{body}");
        assert!(body.contains("audience=api"), "{body}");
        assert_eq!(context.grant_type.as_deref(), Some(GRANT_TYPE));
    }
}
