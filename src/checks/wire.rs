//! Small parsers for what checks read off the wire: `WWW-Authenticate` challenges, JWT payloads
//! (decoded without verification: checks look at claims, signature checks are separate).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A parsed challenge: scheme and its `key=value` / `key="value"` parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses the first challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1). Enough for the
/// single-challenge answers OAuth servers give; quoted strings may contain commas.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            break; // token68 or a second scheme: not needed here
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string()
        };
        params.push((key.trim().to_string(), value));
    }
    Some(Challenge { scheme: scheme.to_string(), params })
}

/// The payload of a compact JWS, if `token` looks like one and its payload is a JSON object.
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.get("alg")?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The form parameters of the request as sent (credential values are fingerprints).
pub fn form(x: &crate::protocol::exchange::Exchange) -> Vec<(String, String)> {
    let body = x.request.body.as_deref().unwrap_or("");
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    // A GET carries its parameters in the query.
    if let Ok(url) = url::Url::parse(&x.request.url) {
        params.extend(url.query_pairs().into_owned());
    }
    params
}

/// The value of one form parameter of the request, if it was sent.
pub fn param(x: &crate::protocol::exchange::Exchange, name: &str) -> Option<String> {
    form(x).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The scheme of the request's `Authorization` header (`Basic`, `Bearer`, `DPoP`), if any.
pub fn auth_scheme(x: &crate::protocol::exchange::Exchange) -> Option<String> {
    x.request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.split_whitespace().next().map(str::to_owned))
}

/// RFC 6749 Appendix A.7/A.8: `error` and `error_description` use %x20-21 / %x23-5B / %x5D-7E.
pub fn is_error_charset(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Scope strings compare as sets of space-delimited tokens (RFC 6749 §3.3).
pub fn scope_set(scope: &str) -> std::collections::BTreeSet<&str> {
    scope.split(' ').filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_error_with_quoted_commas() {
        let c =
            parse_challenge(r#"Bearer realm="api, v1", error="invalid_token", error_description="expired""#).unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("api, v1"));
        assert_eq!(c.param("error"), Some("invalid_token"));
    }

    #[test]
    fn parses_bare_scheme() {
        assert_eq!(parse_challenge("Basic").unwrap().scheme, "Basic");
        assert!(parse_challenge("Bearer").unwrap().params.is_empty());
    }

    #[test]
    fn error_charset_rejects_quote_backslash_and_non_ascii() {
        assert!(is_error_charset("invalid_client: bad secret"));
        assert!(!is_error_charset("bad \"quote\""));
        assert!(!is_error_charset("back\\slash"));
        assert!(!is_error_charset("clé inconnue"));
    }

    #[test]
    fn jwt_claims_needs_three_parts_and_an_alg() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES384"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"exp":10}"#);
        assert_eq!(jwt_claims(&format!("{h}.{p}.sig")).unwrap()["exp"], 10);
        assert!(jwt_claims("opaque-token").is_none());
        assert!(jwt_claims(&format!("{p}.{p}.sig")).is_none());
    }
}
