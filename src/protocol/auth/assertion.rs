//! Client assertions for private_key_jwt (RFC 7523 §3, SMART Backend Services): the good
//! assertion, and the deliberate deviations negative cases need. Signing uses the key parsed once.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::support::keys::KeyPair;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// SMART @331: `exp` no more than five minutes in the future.
pub const LIFETIME_SECS: i64 = 300;

/// What varies per assertion.
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    pub client_id: &'a str,
    /// The token endpoint URL.
    pub audience: &'a str,
    pub now: i64,
    /// ≥ 128 random bits, base64url.
    pub jti: String,
}

pub use crate::model::Mutation;

/// Builds a compact JWS. `signer` is the client's key, or another one for "signed by a key not
/// registered" (its own `kid` then goes in the header).
pub fn build(signer: &KeyPair, claims: &Claims<'_>, m: &Mutation) -> String {
    let mut header = Map::new();
    header.insert("alg".into(), json!(signer.alg.name()));
    header.insert("kid".into(), json!(signer.kid));
    header.insert("typ".into(), json!("JWT"));

    let mut payload = Map::new();
    payload.insert("iss".into(), json!(claims.client_id));
    payload.insert("sub".into(), json!(claims.client_id));
    payload.insert("aud".into(), json!(claims.audience));
    payload.insert("iat".into(), json!(claims.now));
    payload.insert("exp".into(), json!(claims.now.saturating_add(m.exp_in.unwrap_or(LIFETIME_SECS))));
    payload.insert("jti".into(), json!(claims.jti));
    if let Some(nbf) = m.nbf_in {
        payload.insert("nbf".into(), json!(claims.now.saturating_add(nbf)));
    }
    if let Some(list) = &m.aud_array {
        let aud: Vec<&str> = list.iter().map(|a| if a == "$token_endpoint" { claims.audience } else { a }).collect();
        payload.insert("aud".into(), json!(aud));
    }
    apply(&mut payload, &m.claims);

    let alg = if m.hs256_with_public_key { Some("HS256") } else { m.alg.as_deref() };
    if let Some(alg) = alg {
        header.insert("alg".into(), json!(alg));
    }
    apply(&mut header, &m.header);

    let signing_input = format!("{}.{}", b64_json(&header), b64_json(&payload));
    let mut signature = match alg {
        Some("none") => Vec::new(),
        Some("HS256") if m.hs256_with_public_key => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, signer.public_pem().as_bytes());
            hmac::sign(&key, signing_input.as_bytes()).as_ref().to_vec()
        }
        // An algorithm the key cannot do is still announced; the signature is then the key's
        // own, which a correct server refuses either way.
        Some(other) => {
            signer.sign_as(other, signing_input.as_bytes()).unwrap_or_else(|| signer.sign(signing_input.as_bytes()))
        }
        None => signer.sign(signing_input.as_bytes()),
    };
    if m.bad_signature {
        if let Some(last) = signature.last_mut() {
            *last ^= 0x01;
        }
    }
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn apply(target: &mut Map<String, Value>, changes: &BTreeMap<String, Value>) {
    for (k, v) in changes {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

fn b64_json(map: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(map.clone()).to_string())
}

/// A fresh `jti`: 128 random bits.
pub fn new_jti() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).unwrap_or_else(|_| unreachable!("the system RNG does not fail"));
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::keys::{KeyAlg, KidStyle};
    use std::collections::BTreeSet;

    fn parts(jws: &str) -> (Map<String, Value>, Map<String, Value>, String) {
        let mut it = jws.split('.');
        let h = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
        let p = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
        (h, p, it.next().unwrap().to_string())
    }

    fn diff(a: &Map<String, Value>, b: &Map<String, Value>) -> BTreeSet<String> {
        a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
    }

    fn claims() -> Claims<'static> {
        Claims {
            client_id: "backend",
            audience: "https://as.example/token",
            now: 1_700_000_000,
            jti: "fixed-jti".into(),
        }
    }

    /// Each negative assertion differs from the good one in exactly what it is named for.
    #[test]
    fn mutations_change_exactly_what_they_name() {
        let key = KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638).unwrap();
        let good = build(&key, &claims(), &Mutation::default());
        let (gh, gp, _) = parts(&good);
        assert_eq!(gp["exp"].as_i64().unwrap() - gp["iat"].as_i64().unwrap(), LIFETIME_SECS);
        let set = |k: &str, v: Value| BTreeMap::from([(k.to_string(), v)]);
        let cases: Vec<(&str, Mutation, &[&str], &[&str])> = vec![
            (
                "wrong aud",
                Mutation { claims: set("aud", json!("https://elsewhere.example/token")), ..Default::default() },
                &[],
                &["aud"],
            ),
            (
                "aud array",
                Mutation { aud_array: Some(vec!["https://elsewhere.example".into()]), ..Default::default() },
                &[],
                &["aud"],
            ),
            ("expired", Mutation { exp_in: Some(-120), ..Default::default() }, &[], &["exp"]),
            ("long exp", Mutation { exp_in: Some(600), ..Default::default() }, &[], &["exp"]),
            // A scenario's extreme number is an extreme claim, not an overflow.
            ("far exp", Mutation { exp_in: Some(i64::MAX), ..Default::default() }, &[], &["exp"]),
            ("far nbf", Mutation { nbf_in: Some(i64::MIN), ..Default::default() }, &[], &["nbf"]),
            ("no exp", Mutation { claims: set("exp", Value::Null), ..Default::default() }, &[], &["exp"]),
            ("no jti", Mutation { claims: set("jti", Value::Null), ..Default::default() }, &[], &["jti"]),
            ("sub", Mutation { claims: set("sub", json!("other")), ..Default::default() }, &[], &["sub"]),
            ("nbf", Mutation { nbf_in: Some(120), ..Default::default() }, &[], &["nbf"]),
            ("alg none", Mutation { alg: Some("none".into()), ..Default::default() }, &["alg"], &[]),
            ("hs256", Mutation { hs256_with_public_key: true, ..Default::default() }, &["alg"], &[]),
            ("kid", Mutation { header: set("kid", json!("unknown")), ..Default::default() }, &["kid"], &[]),
            (
                "jku",
                Mutation { header: set("jku", json!("https://x.example/jwks")), ..Default::default() },
                &["jku"],
                &[],
            ),
            ("bad signature", Mutation { bad_signature: true, ..Default::default() }, &[], &[]),
        ];
        for (name, m, header, claims_changed) in cases {
            let jws = build(&key, &claims(), &m);
            let (h, p, s) = parts(&jws);
            assert_eq!(diff(&gh, &h), header.iter().map(|s| s.to_string()).collect(), "{name}: header");
            assert_eq!(diff(&gp, &p), claims_changed.iter().map(|s| s.to_string()).collect(), "{name}: claims");
            if name == "alg none" {
                assert!(s.is_empty(), "alg none carries no signature");
            }
        }
    }

    #[test]
    fn bad_signature_differs_only_in_the_signature() {
        let key = KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638).unwrap();
        let good = build(&key, &claims(), &Mutation::default());
        let bad = build(&key, &claims(), &Mutation { bad_signature: true, ..Default::default() });
        assert_eq!(good.rsplit_once('.').unwrap().0, bad.rsplit_once('.').unwrap().0);
        assert_ne!(good, bad);
    }
}
