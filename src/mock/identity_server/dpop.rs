//! The mock's DPoP proof verification (RFC 9449 §4.3): every rule of the list, each one a
//! defect can switch off; what the proof says of the key (its thumbprint, for the token's
//! `cnf.jkt`), of the access token it goes with (`ath`) and of the nonce it carries.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::Defect;
use super::assertion::{NotFirst, Rejection, ReplayCache};
use crate::mock::defects::DefectSet;

/// Signing algorithms the mock verifies (its metadata's `dpop_signing_alg_values_supported`).
pub const ALGS: &[&str] = &["ES256", "ES384"];
/// How far `iat` may be from now.
const IAT_WINDOW_SECS: i64 = 60;

/// What a valid proof binds, for the caller's own rules (nonce, `ath`, the token's key).
pub struct Proof {
    pub jkt: String,
    pub ath: Option<String>,
    pub nonce: Option<String>,
}

/// What `proof` binds if it is a valid proof for `htm` `htu` used for the first time; else why
/// not.
pub fn verify(
    proof: &str,
    htm: &str,
    htu: &str,
    replay: &ReplayCache,
    now: i64,
    defects: &DefectSet<Defect>,
) -> Result<Proof, Rejection> {
    let (proof, jti) = checked(proof, htm, htu, now, defects)?;
    // §11.1: one use per proof, for as long as its iat keeps it acceptable.
    match replay.first_use("dpop", &jti, now + IAT_WINDOW_SECS, now) {
        Ok(()) => Ok(proof),
        Err(NotFirst::Replay) if defects.on(Defect::DpopReplayAccepted) => Ok(proof),
        Err(NotFirst::Replay) => Err(Rejection::Refused("this proof was already used")),
        Err(NotFirst::Full) => Err(Rejection::Unavailable),
    }
}

/// What `proof` binds, and its `jti`, if every rule but one use holds.
fn checked(
    proof: &str,
    htm: &str,
    htu: &str,
    now: i64,
    defects: &DefectSet<Defect>,
) -> Result<(Proof, String), &'static str> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [h, p, s] = parts[..] else { return Err("a DPoP proof is a JWS") };
    let json = |part: &str| -> Option<serde_json::Map<String, Value>> {
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()?.as_object().cloned()
    };
    let (header, claims) = (json(h).ok_or("unreadable header")?, json(p).ok_or("unreadable claims")?);
    let text = |m: &serde_json::Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    if text(&header, "typ").as_deref() != Some("dpop+jwt") && !defects.on(Defect::DpopTypUnchecked) {
        return Err("typ must be dpop+jwt");
    }
    let jwk = header.get("jwk").and_then(Value::as_object).ok_or("no jwk")?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| jwk.contains_key(*m))
        && !defects.on(Defect::DpopPrivateJwkAccepted)
    {
        return Err("jwk holds a private key");
    }
    let alg = text(&header, "alg").unwrap_or_default();
    let unchecked = defects.on(Defect::DpopSignatureUnchecked);
    if !unchecked {
        if !ALGS.contains(&alg.as_str()) {
            return Err("unsupported or symmetric alg");
        }
        let coordinate = |k: &str| text(jwk, k).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        let (x, y) = (coordinate("x").ok_or("no x")?, coordinate("y").ok_or("no y")?);
        let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
        let algorithm = if alg == "ES256" { &ECDSA_P256_SHA256_FIXED } else { &ECDSA_P384_SHA384_FIXED };
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| "unreadable signature")?;
        UnparsedPublicKey::new(algorithm, point)
            .verify(format!("{h}.{p}").as_bytes(), &signature)
            .map_err(|_| "the signature does not verify with jwk")?;
    }
    if !defects.on(Defect::DpopHtuUnchecked) {
        if text(&claims, "htm").as_deref() != Some(htm) {
            return Err("htm is not the request's method");
        }
        if text(&claims, "htu").as_deref() != Some(htu) {
            return Err("htu is not the token endpoint");
        }
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("no iat")?;
    if iat.saturating_sub(now).saturating_abs() > IAT_WINDOW_SECS && !defects.on(Defect::DpopIatUnchecked) {
        return Err("iat is not recent");
    }
    let jti = text(&claims, "jti").ok_or("no jti")?;
    let proof =
        Proof { jkt: crate::support::keys::thumbprint(jwk), ath: text(&claims, "ath"), nonce: text(&claims, "nonce") };
    Ok((proof, jti))
}
