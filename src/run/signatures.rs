//! Signatures of what a server signs (id_tokens, JWT access tokens) against the keys it
//! publishes at its `jwks_uri`, with jsonwebtoken: the checks read the outcome.

use serde_json::Value;
use url::Url;

use super::Runner;
use crate::protocol::exchange::Exchange;
use crate::protocol::http::Request;

impl Runner {
    /// A JWS's signature against the key at `jwks_uri` its `kid` names (the only key when it
    /// names none): `Ok`, or what failed. Claims are other checks' business.
    pub(super) async fn verify_with_jwks(&self, jwks_uri: &Url, token: &str) -> Result<(), String> {
        let exchange = self
            .exchange(Request::new(reqwest::Method::GET, jwks_uri.clone()), Default::default())
            .await
            .map_err(|e| format!("cannot fetch {jwks_uri}: {e}"))?;
        let keys = exchange
            .response
            .json_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("unreadable header: {e}"))?;
        let key = keys
            .iter()
            .find(|k| header.kid.is_none() || k.get("kid").and_then(Value::as_str) == header.kid.as_deref())
            .ok_or_else(|| match &header.kid {
                Some(kid) => format!("no key with kid {kid} at {jwks_uri}"),
                None => format!("no key at {jwks_uri}"),
            })?;
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.clone()).map_err(|e| format!("unusable JWK: {e}"))?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable JWK: {e}"))?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(token, &decoding, &validation).map(|_| ()).map_err(|e| format!("signature: {e}"))
    }

    /// The signature of a successful answer's JWT access token against the server's `jwks_uri`
    /// (RFC 9068 §4); `None` when there is no JWT access token to check.
    pub(super) async fn access_token_signature(&self, exchange: &Exchange) -> Option<Result<(), String>> {
        let token = exchange.response.json_str("access_token").filter(|_| exchange.response.is_success())?;
        crate::checks::wire::jwt_claims(token)?;
        Some(self.verify_with_metadata_keys(token).await)
    }

    /// The signature of a JWT introspection answer (RFC 9701 §5) against the server's
    /// `jwks_uri`; `None` when the answer is not a JWT.
    pub(super) async fn answer_signature(&self, exchange: &Exchange) -> Option<Result<(), String>> {
        let text = std::str::from_utf8(&exchange.response.body).ok()?.trim();
        crate::checks::wire::jwt_claims(text).filter(|_| exchange.response.status == 200)?;
        Some(self.verify_with_metadata_keys(text).await)
    }

    async fn verify_with_metadata_keys(&self, token: &str) -> Result<(), String> {
        let jwks_uri = self
            .endpoints
            .metadata
            .as_ref()
            .and_then(|m| m.get("jwks_uri"))
            .and_then(Value::as_str)
            .and_then(|u| Url::parse(u).ok());
        match jwks_uri {
            Some(uri) => self.verify_with_jwks(&uri, token).await,
            None => Err("the server's metadata names no jwks_uri to verify it with".into()),
        }
    }
}
