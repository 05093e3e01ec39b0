//! Client assertions built and signed per second on one core, against a bare signature over a
//! pre-parsed key with the same backend (aws-lc-rs) measured in the same run, and against
//! `jsonwebtoken::encode` (which re-parses the key on every call) for context.
//!
//! Run: `cargo bench --bench assertions`. Each measurement is bounded to ~2 s.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA384, RsaKeyPair};
use oauth_harness::protocol::auth::assertion::{self, Claims, Mutation};
use oauth_harness::support::keys::{KeyAlg, KeyPair, KidStyle};

const BUDGET: Duration = Duration::from_secs(2);

/// Calls `f` repeatedly for about `BUDGET`; returns calls per second.
fn rate(mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f(); // warm-up
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < BUDGET {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("PEM body")
}

fn main() {
    let rng = SystemRandom::new();
    let audience = "https://as.example.org/connect/token";
    println!(
        "{:<8} {:>14} {:>14} {:>8} {:>18} {:>8}",
        "alg", "bare sig/s", "assertions/s", "ratio", "jsonwebtoken/s", "ratio"
    );
    for alg in [KeyAlg::Rs384, KeyAlg::Es384] {
        let key = KeyPair::generate(alg, 2048, KidStyle::Rfc7638).expect("key");
        // A signing input of the size a real assertion has.
        let sample = assertion::build(
            &key,
            &Claims { client_id: "backend-service", audience, now: 1, jti: assertion::new_jti() },
            &Mutation::default(),
        );
        let input = sample.rsplit_once('.').expect("JWS").0.as_bytes().to_vec();
        let pkcs8 = der(key.private_pem());

        let bare = match alg {
            KeyAlg::Rs384 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8).expect("RSA key");
                let mut sig = vec![0u8; pair.public_modulus_len()];
                rate(|| pair.sign(&RSA_PKCS1_SHA384, &rng, black_box(&input), &mut sig).expect("sign"))
            }
            KeyAlg::Es384 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &pkcs8).expect("EC key");
                rate(|| {
                    black_box(pair.sign(&rng, black_box(&input)).expect("sign"));
                })
            }
        };
        let ours = rate(|| {
            let claims = Claims {
                client_id: "backend-service",
                audience,
                now: oauth_harness::support::clock::unix_now(),
                jti: assertion::new_jti(),
            };
            black_box(assertion::build(&key, &claims, &Mutation::default()));
        });
        let (jwt_alg, encoding_key) = match alg {
            KeyAlg::Rs384 => {
                (jsonwebtoken::Algorithm::RS384, jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem().as_bytes()))
            }
            KeyAlg::Es384 => {
                (jsonwebtoken::Algorithm::ES384, jsonwebtoken::EncodingKey::from_ec_pem(key.private_pem().as_bytes()))
            }
        };
        let encoding_key = encoding_key.expect("jsonwebtoken key");
        let mut header = jsonwebtoken::Header::new(jwt_alg);
        header.kid = Some(key.kid.clone());
        let reference = rate(|| {
            let claims = serde_json::json!({
                "iss": "backend-service", "sub": "backend-service", "aud": audience,
                "iat": oauth_harness::support::clock::unix_now(), "exp": oauth_harness::support::clock::unix_now() + 300, "jti": assertion::new_jti(),
            });
            black_box(jsonwebtoken::encode(&header, &claims, &encoding_key).expect("encode"));
        });
        println!(
            "{:<8} {:>14.0} {:>14.0} {:>7.2}x {:>18.0} {:>7.2}x",
            alg.name(),
            bare,
            ours,
            ours / bare,
            reference,
            reference / bare
        );
    }
    println!("(one core; ratio = rate / bare signature rate in this run; target for assertions/s: >= 0.90x)");
}
