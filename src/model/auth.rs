//! How a client authenticates: the methods a client can be registered for (RFC 7591 §2
//! `token_endpoint_auth_method` values) and what one request actually sends.

use serde::Deserialize;

/// A client authentication method a client can be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A client assertion signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A certificate from a CA, matched on its subject (RFC 8705 §2.1).
    TlsClientAuth,
    /// A self-signed certificate, matched on its registered key (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const ALL: &'static [AuthMethod] = &[
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::TlsClientAuth,
        AuthMethod::SelfSignedTlsClientAuth,
    ];

    /// The registered name (`token_endpoint_auth_methods_supported` values).
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// Needs a client secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
    }

    /// Authenticates with the TLS client certificate (RFC 8705 §2).
    pub fn uses_certificate(self) -> bool {
        matches!(self, AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth)
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one request sends to authenticate: a registered method, or one of the two deliberate
/// deviations (two methods at once; none at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthChoice {
    ClientSecretBasic,
    ClientSecretPost,
    /// Basic and post in the same request: a client MUST NOT do this (RFC 6749 §2.3).
    Both,
    PrivateKeyJwt,
    TlsClientAuth,
    SelfSignedTlsClientAuth,
    /// No credentials; `client_id` only (a public client, RFC 6749 §3.2.1).
    None,
}

impl AuthChoice {
    /// The single registered method this choice sends, if it is one.
    pub fn method(self) -> Option<AuthMethod> {
        match self {
            AuthChoice::ClientSecretBasic => Some(AuthMethod::ClientSecretBasic),
            AuthChoice::ClientSecretPost => Some(AuthMethod::ClientSecretPost),
            AuthChoice::PrivateKeyJwt => Some(AuthMethod::PrivateKeyJwt),
            AuthChoice::TlsClientAuth => Some(AuthMethod::TlsClientAuth),
            AuthChoice::SelfSignedTlsClientAuth => Some(AuthMethod::SelfSignedTlsClientAuth),
            AuthChoice::Both | AuthChoice::None => None,
        }
    }
}

impl From<AuthMethod> for AuthChoice {
    fn from(m: AuthMethod) -> Self {
        match m {
            AuthMethod::ClientSecretBasic => AuthChoice::ClientSecretBasic,
            AuthMethod::ClientSecretPost => AuthChoice::ClientSecretPost,
            AuthMethod::PrivateKeyJwt => AuthChoice::PrivateKeyJwt,
            AuthMethod::TlsClientAuth => AuthChoice::TlsClientAuth,
            AuthMethod::SelfSignedTlsClientAuth => AuthChoice::SelfSignedTlsClientAuth,
        }
    }
}
