//! DPoP proofs (RFC 9449 §4): a JWT signed with the client's proof key, naming the request's
//! method and URL, fresh each time — or one of the broken proofs a server must refuse.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::model::DpopProof;
use crate::support::clock::unix_now;
use crate::support::keys::{KeyPair, thumbprint};

/// The proof for `method` `url` signed by `key`, broken as `kind` says; and the key's RFC 7638
/// thumbprint (what a bound token's `cnf.jkt` must be).
pub fn proof(key: &KeyPair, method: &str, url: &str, kind: DpopProof) -> (String, String) {
    let mut jwk = key.jwk().as_object().cloned().unwrap_or_default();
    for member in ["kid", "use", "alg"] {
        jwk.remove(member);
    }
    let jkt = thumbprint(&jwk);
    if kind == DpopProof::PrivateJwk {
        // Any private member is enough for the rule; this is not the key's.
        jwk.insert("d".into(), json!(URL_SAFE_NO_PAD.encode([7u8; 48])));
    }
    let alg = if kind == DpopProof::AlgNone { "none" } else { key.alg.name() };
    let mut header = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": Value::Object(jwk) });
    if kind == DpopProof::NoTyp {
        header.as_object_mut().map(|h| h.remove("typ"));
    }
    let htm = if kind == DpopProof::WrongHtm { "GET" } else { method };
    let htu = if kind == DpopProof::WrongHtu { "https://elsewhere.oauth-harness.invalid/token" } else { url };
    let iat = if kind == DpopProof::StaleIat { unix_now() - 600 } else { unix_now() };
    let claims = json!({ "jti": crate::protocol::auth::random_secret(), "htm": htm, "htu": htu, "iat": iat });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = match kind {
        DpopProof::AlgNone => Vec::new(),
        DpopProof::BadSignature => {
            let mut s = key.sign(input.as_bytes());
            if let Some(b) = s.first_mut() {
                *b ^= 0xff;
            }
            s
        }
        _ => key.sign(input.as_bytes()),
    };
    (format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)), jkt)
}
