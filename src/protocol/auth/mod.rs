//! Client authentication at the token endpoint (RFC 6749 §2.3): how credentials go on the wire.

pub mod assertion;
pub mod dpop;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::model::AuthChoice;
use crate::protocol::exchange::AuthUsed;
use crate::protocol::http::Value;
use crate::support::secret::Secret;

/// The credentials a request carries; `secret` is `None` for public clients, `assertion` is the
/// signed client assertion for private_key_jwt.
pub struct Credentials<'a> {
    pub client_id: &'a str,
    pub secret: Option<&'a Secret>,
    pub assertion: Option<&'a Secret>,
}

/// `Authorization: Basic` value per RFC 6749 §2.3.1: id and secret are each
/// application/x-www-form-urlencoded *before* Base64, so `:` inside a secret cannot split it.
pub fn basic_header(client_id: &str, secret: &str) -> Secret {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    Secret::new(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
}

/// RFC 6749 §2.3.1's form-encoding changes `value` (it holds reserved characters).
pub fn form_encoding_changes(value: &str) -> bool {
    form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>() != value
}

/// A secret no server has ever seen: 128 random bits, base64url. Negative cases send it in place
/// of the real one, so a server's failed-login log never holds anything derived from it.
pub fn random_secret() -> String {
    assertion::new_jti()
}

/// Adds the credentials to the headers and form as `choice` says; returns what was used.
pub fn apply(
    choice: AuthChoice,
    creds: &Credentials<'_>,
    headers: &mut Vec<(String, Value)>,
    form: &mut Vec<(String, Value)>,
) -> AuthUsed {
    let empty = Secret::new("");
    let secret = creds.secret.unwrap_or(&empty);
    let basic = |headers: &mut Vec<(String, Value)>| {
        headers.push(("Authorization".into(), Value::Secret(basic_header(creds.client_id, secret.expose()))));
    };
    let post = |form: &mut Vec<(String, Value)>| {
        form.push(("client_id".into(), Value::Plain(creds.client_id.into())));
        form.push(("client_secret".into(), Value::Secret(secret.clone())));
    };
    match choice {
        AuthChoice::ClientSecretBasic => {
            basic(headers);
            AuthUsed::ClientSecretBasic
        }
        AuthChoice::ClientSecretPost => {
            post(form);
            AuthUsed::ClientSecretPost
        }
        AuthChoice::Both => {
            basic(headers);
            post(form);
            AuthUsed::Both
        }
        AuthChoice::PrivateKeyJwt => {
            // RFC 7521 §4.2: client_id is optional; SMART Backend Services omit it.
            form.push(("client_assertion_type".into(), Value::Plain(assertion::ASSERTION_TYPE.into())));
            if let Some(a) = creds.assertion {
                form.push(("client_assertion".into(), Value::Secret(a.clone())));
            }
            AuthUsed::PrivateKeyJwt
        }
        AuthChoice::TlsClientAuth | AuthChoice::SelfSignedTlsClientAuth => {
            // The certificate authenticates; the form names the client (RFC 8705 §2).
            form.push(("client_id".into(), Value::Plain(creds.client_id.into())));
            AuthUsed::TlsClientAuth
        }
        AuthChoice::None => {
            // A public client still names itself (RFC 6749 §3.2.1).
            form.push(("client_id".into(), Value::Plain(creds.client_id.into())));
            AuthUsed::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_encodes_reserved_characters_before_base64() {
        let header = basic_header("my client", "s:e%c+r/et");
        let b64 = header.expose().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(decoded, "my+client:s%3Ae%25c%2Br%2Fet");
    }
}
