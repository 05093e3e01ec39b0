//! OpenID Provider metadata (OpenID Connect Discovery 1.0 §4): where the endpoints are.

use reqwest::Method;
use url::Url;

use crate::exchange::RequestContext;
use crate::http::{Request, Value};

/// `{issuer}/.well-known/…`: the well-known path is appended to the issuer's path, as OIDC
/// Discovery §4.1 says (not RFC 8414's insertion), which is what IdentityServer and Keycloak use.
pub fn document_url(issuer: &Url, well_known: &str) -> Url {
    let mut url = issuer.clone();
    let path = format!("{}{}", issuer.path().trim_end_matches('/'), well_known);
    url.set_path(&path);
    url.set_query(None);
    url
}

pub fn build(issuer: &Url, well_known: &str) -> (Request, RequestContext) {
    let request = Request::new(Method::GET, document_url(issuer, well_known))
        .header("Accept", Value::Plain("application/json".into()));
    (request, RequestContext::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_to_the_issuer_path() {
        let issuer = Url::parse("https://id.example/realms/esante-wallet").unwrap();
        assert_eq!(
            document_url(&issuer, "/.well-known/openid-configuration").as_str(),
            "https://id.example/realms/esante-wallet/.well-known/openid-configuration"
        );
        let root = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            document_url(&root, "/.well-known/openid-configuration").path(),
            "/.well-known/openid-configuration"
        );
    }
}
