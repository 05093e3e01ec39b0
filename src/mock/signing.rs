//! The mocks' token signing key: ES384 (P-384) generated at start-up, published as a JWKS.
//! Signing goes straight through aws-lc-rs with the key parsed once: the mock must never be the
//! slow side of a load test.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

pub struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    pub kid: String,
    jwk: serde_json::Value,
}

impl SigningKey {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .unwrap_or_else(|_| unreachable!("P-384 key generation does not fail with the system RNG"));
        // Uncompressed point: 0x04 || X (48 bytes) || Y (48 bytes).
        let point = pair.public_key().as_ref();
        let x = URL_SAFE_NO_PAD.encode(&point[1..49]);
        let y = URL_SAFE_NO_PAD.encode(&point[49..97]);
        // RFC 7638 thumbprint: the required members, lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwk = json!({ "kty": "EC", "crv": "P-384", "x": x, "y": y, "use": "sig", "alg": "ES384", "kid": kid });
        Self { pair, rng, kid, jwk }
    }

    pub fn jwks(&self) -> serde_json::Value {
        json!({ "keys": [self.jwk] })
    }

    /// The claims of a compact JWS this key signed (ES384, and the signature holds), else `None`.
    pub fn verify(&self, jws: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
        let (input, signature) = jws.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("ES384") {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, self.pair.public_key().as_ref())
            .verify(input.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// A compact JWS over `claims`.
    pub fn sign(&self, claims: &serde_json::Value, typ: &str) -> String {
        let header = json!({ "alg": "ES384", "typ": typ, "kid": self.kid });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .unwrap_or_else(|_| unreachable!("ECDSA signing with a valid key does not fail"));
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};

    #[test]
    fn signature_verifies_with_the_published_key() {
        let key = SigningKey::generate();
        let jws = key.sign(&json!({"sub": "x"}), "at+jwt");
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let jwk = &key.jwks()["keys"][0];
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .unwrap();
    }
}
