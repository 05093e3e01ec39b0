//! Keys and assertions, checked against independent implementations: the `rsa` crate (pure Rust)
//! verifies RS384 assertions, jsonwebtoken verifies ES384 ones; JWK members round-trip to the PEM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{code, run_bin, stderr, stdout};
use oauth_harness::protocol::auth::assertion::{self, Claims, Mutation};
use oauth_harness::support::keys::{KeyAlg, KeyPair, KidStyle};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

fn claims() -> Claims<'static> {
    Claims {
        client_id: "backend",
        audience: "https://as.example/token",
        now: oauth_harness::support::clock::unix_now(),
        jti: assertion::new_jti(),
    }
}

#[test]
fn rs384_assertion_verifies_with_the_rsa_crate() {
    use rsa::signature::Verifier;
    let key =
        KeyPair::load(&common::repo_path("fixtures/keys/backend-rs384/private.pem"), Some(KidStyle::Rfc7638)).unwrap();
    let jws = assertion::build(&key, &claims(), &Mutation::default());
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let public = rsa::RsaPublicKey::from_public_key_pem(key.public_pem()).unwrap();
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(public);
    let signature = rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
    verifier.verify(input.as_bytes(), &signature).expect("RS384 signature verifies independently");
    // …and a corrupted one does not.
    let bad = assertion::build(&key, &claims(), &Mutation { bad_signature: true, ..Default::default() });
    let (input, sig) = bad.rsplit_once('.').unwrap();
    let signature = rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
    assert!(verifier.verify(input.as_bytes(), &signature).is_err());
}

#[test]
fn es384_assertion_verifies_with_jsonwebtoken_and_carries_the_smart_claims() {
    let key = KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638).unwrap();
    let c = claims();
    let jws = assertion::build(&key, &c, &Mutation::default());
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES384);
    validation.set_audience(&[c.audience]);
    validation.set_issuer(&[c.client_id]);
    validation.sub = Some(c.client_id.to_string());
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &jws,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("ES384 assertion verifies with jsonwebtoken");
    assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
    assert_eq!(data.header.typ.as_deref(), Some("JWT"));
    let claims = data.claims;
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300, "exp = now + 5 min");
    // jti: at least 128 random bits.
    assert!(URL_SAFE_NO_PAD.decode(claims["jti"].as_str().unwrap()).unwrap().len() >= 16);
}

#[test]
fn keys_generate_round_trips_rsa_jwk_and_pem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rsa");
    let o = run_bin(&["keys", "generate", "--alg", "RS384", "--bits", "2048", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("jwks.json")).unwrap()).unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["use"].as_str()),
        (Some("RSA"), Some("RS384"), Some("sig"))
    );
    assert!(jwk.get("d").is_none() && jwk.get("p").is_none(), "no private members in the JWKS");
    let public =
        rsa::RsaPublicKey::from_public_key_pem(&std::fs::read_to_string(out.join("public.pem")).unwrap()).unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap(), public.n().to_bytes_be());
    assert_eq!(URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap(), public.e().to_bytes_be());
    // The private key reloads to the same public key and kid.
    let reloaded = KeyPair::load(&out.join("private.pem"), Some(KidStyle::Rfc7638)).unwrap();
    assert_eq!(reloaded.jwk(), *jwk);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("private.pem")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the private key is readable by its owner only");
    }
}

#[test]
fn pem_sha256_16_kid_matches_a_hand_computed_value() {
    // Computed outside Rust: base64url(sha256(public.pem bytes))[:16] with Python's hashlib.
    for (name, expected) in [("backend-rs384", "ehPduMDr6SVb4SKS"), ("backend-es384", "LfZzZzI7QBX0DP-C")] {
        let key = KeyPair::load(
            &common::repo_path(&format!("fixtures/keys/{name}/private.pem")),
            Some(KidStyle::PemSha256_16),
        )
        .unwrap();
        assert_eq!(key.kid, expected, "{name}");
    }
    let o = run_bin(&["keys", "jwks", "--kid", "pem-sha256-16", "fixtures/keys/backend-rs384/private.pem"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("\"kid\": \"ehPduMDr6SVb4SKS\""), "{}", stdout(&o));
}

#[test]
fn keys_bad_input_is_exit_2_and_an_unwritable_folder_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    // An unwritable output: a path below a regular file. A file that cannot be written is a
    // runtime error (exit 3) for every command, as for `run`'s reports.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = run_bin(&["keys", "generate", "--alg", "ES384", "--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write") && stderr(&o).contains("a-file"), "{}", stderr(&o));

    let o = run_bin(&["keys", "generate", "--alg", "HS256", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("RS384") && stderr(&o).contains("ES384"), "lists the valid algs: {}", stderr(&o));

    let corrupt = dir.path().join("corrupt.pem");
    std::fs::write(&corrupt, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n").unwrap();
    let o = run_bin(&["keys", "jwks", corrupt.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("corrupt.pem") && stderr(&o).contains("not a PKCS#8"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn a_target_with_a_corrupt_private_key_is_exit_2_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.pem"), "garbage").unwrap();
    let target = dir.path().join("t.yaml");
    std::fs::write(
        &target,
        "issuer: http://127.0.0.1:9\nclients:\n  backend-rs384:\n    client_id: x\n    private_key: k.pem\n",
    )
    .unwrap();
    let o = run_bin(&["validate", "scenarios/smart-backend", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("t.yaml:5:18") && stderr(&o).contains("k.pem"), "{}", stderr(&o));
}
