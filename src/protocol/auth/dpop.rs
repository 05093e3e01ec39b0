//! DPoP proofs (RFC 9449 §4): a JWT signed with the client's proof key, naming the request's
//! method and URL, fresh each time — or one of the broken proofs a server must refuse.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::DpopProof;
use crate::support::clock::unix_now;
use crate::support::keys::{KeyPair, thumbprint};

/// What a proof binds besides the request: the access token it goes with at a resource (§4.2
/// `ath`) and the nonce the server handed out (§8, §9).
#[derive(Debug, Default, Clone, Copy)]
pub struct Bind<'a> {
    pub access_token: Option<&'a str>,
    pub nonce: Option<&'a str>,
}

/// `ath`: the base64url SHA-256 of the access token's ASCII octets (§4.2).
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// The proof for `method` `url` signed by `key`, broken as `kind` says; and the key's RFC 7638
/// thumbprint (what a bound token's `cnf.jkt` must be). `Replayed` is the caller's to do (it
/// resends an earlier proof): here it is a good proof.
pub fn proof(key: &KeyPair, method: &str, url: &str, kind: DpopProof, bind: Bind<'_>) -> (String, String) {
    let mut jwk = key.jwk().as_object().cloned().unwrap_or_default();
    for member in ["kid", "use", "alg"] {
        jwk.remove(member);
    }
    let jkt = thumbprint(&jwk);
    if kind == DpopProof::PrivateJwk {
        // Any private member is enough for the rule; this is not the key's.
        jwk.insert("d".into(), json!(URL_SAFE_NO_PAD.encode([7u8; 48])));
    }
    let alg = match kind {
        DpopProof::AlgNone => "none",
        DpopProof::SymmetricAlg => "HS256",
        _ => key.alg.name(),
    };
    let mut header = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": Value::Object(jwk) });
    match kind {
        DpopProof::NoTyp => _ = header.as_object_mut().map(|h| h.remove("typ")),
        DpopProof::WrongTyp => header["typ"] = json!("JWT"),
        _ => {}
    }
    let htm = if kind == DpopProof::WrongHtm { "GET" } else { method };
    let htu = if kind == DpopProof::WrongHtu { "https://elsewhere.oauth-harness.invalid/token" } else { url };
    let iat = if kind == DpopProof::StaleIat { unix_now() - 600 } else { unix_now() };
    let mut claims = json!({ "jti": crate::protocol::auth::random_secret(), "htm": htm, "htu": htu, "iat": iat });
    let members = claims.as_object_mut().unwrap_or_else(|| unreachable!("a JSON object literal"));
    if let Some(token) = bind.access_token {
        members.insert("ath".into(), json!(ath(token)));
    }
    if let Some(nonce) = bind.nonce {
        members.insert("nonce".into(), json!(nonce));
    }
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = match kind {
        DpopProof::AlgNone => Vec::new(),
        DpopProof::SymmetricAlg => {
            // A MAC under a key nobody shares: only a server that skips the alg rule could accept it.
            let secret = crate::protocol::auth::random_secret();
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), input.as_bytes()).as_ref().to_vec()
        }
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
