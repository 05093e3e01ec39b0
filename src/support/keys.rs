//! Client key pairs for private_key_jwt: generation (rsa for RSA, p384 for P-384), PEM and JWK
//! forms, `kid` derivation, and signing with the key parsed once (aws-lc-rs).

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p384::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Signature algorithms a client key can be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, clap::ValueEnum)]
pub enum KeyAlg {
    #[serde(rename = "RS384")]
    #[value(name = "RS384")]
    Rs384,
    #[serde(rename = "ES384")]
    #[value(name = "ES384")]
    Es384,
}

impl KeyAlg {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::Rs384 => "RS384",
            KeyAlg::Es384 => "ES384",
        }
    }
}

/// How a key's `kid` is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KidStyle {
    /// RFC 7638 JWK thumbprint (SHA-256, base64url) — the standard.
    #[default]
    Rfc7638,
    /// base64url(SHA-256(public key PEM text))[..16] — the convention of some integration guides.
    PemSha256_16,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Unreadable(#[from] crate::support::files::FileError),
    #[error("`{path}` is not a PKCS#8, PKCS#1 or SEC1 private key PEM for RSA or P-384")]
    NotAKey { path: PathBuf },
    #[error("RSA keys need at least 2048 bits, got {0}")]
    WeakRsa(usize),
    #[error("key generation failed: {0}")]
    Generation(String),
    #[error("cannot write `{path}`: {reason}")]
    Unwritable { path: PathBuf, reason: String },
    #[error("the key is {key}, but {wanted} was asked for")]
    AlgMismatch { key: &'static str, wanted: &'static str },
    #[error("`{path}` already holds a key; it is not replaced")]
    Exists { path: PathBuf },
}

/// Key files are small: anything larger is not a key.
const MAX_KEY_FILE: u64 = 256 * 1024;
/// Written beside `private.pem`: how its kid was derived, so `keys jwks` and targets derive the
/// same kid later.
pub const KEY_INFO: &str = "key.json";
const KEY_FILES: &[&str] = &["private.pem", "public.pem", "jwk.json", "jwks.json", KEY_INFO];

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyInfo {
    alg: String,
    kid: String,
    kid_style: KidStyle,
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key with everything derived from it.
pub struct KeyPair {
    pub alg: KeyAlg,
    pub kid: String,
    pkcs8_pem: String,
    public_pem: String,
    /// How `kid` was derived (recorded beside a written key).
    pub kid_style: KidStyle,
    /// Public JWK members without `kid`, `use`, `alg`.
    public_members: Map<String, Value>,
    signer: Signer,
    rng: SystemRandom,
}

/// The kid style `keys generate` recorded beside a key, if it did.
fn recorded_style(key_path: &Path) -> Option<KidStyle> {
    let info = key_path.parent()?.join(KEY_INFO);
    let text = crate::support::files::read_text(&info, MAX_KEY_FILE).ok()?;
    serde_json::from_str::<KeyInfo>(&text).ok().map(|i| i.kid_style)
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl KeyPair {
    pub fn generate(alg: KeyAlg, rsa_bits: usize, kid: KidStyle) -> Result<Self, KeyError> {
        let mut rng = rsa::rand_core::OsRng;
        let pem = match alg {
            KeyAlg::Rs384 => {
                if rsa_bits < 2048 {
                    return Err(KeyError::WeakRsa(rsa_bits));
                }
                let key =
                    rsa::RsaPrivateKey::new(&mut rng, rsa_bits).map_err(|e| KeyError::Generation(e.to_string()))?;
                key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Generation(e.to_string()))?
            }
            KeyAlg::Es384 => p384::SecretKey::random(&mut rng)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| KeyError::Generation(e.to_string()))?,
        };
        Self::from_pem(&pem, Path::new("(generated)"), kid)
    }

    /// Reads a private key PEM file: PKCS#8, or PKCS#1 (RSA) / SEC1 (EC). The kid is derived in
    /// `kid` style, or as `keys generate` recorded beside the key, or by RFC 7638.
    pub fn load(path: &Path, kid: Option<KidStyle>) -> Result<Self, KeyError> {
        let text = crate::support::files::read_text(path, MAX_KEY_FILE).map_err(KeyError::Unreadable)?;
        let style = kid.or_else(|| recorded_style(path)).unwrap_or_default();
        Self::from_pem(&text, path, style)
    }

    /// Refuses a folder that already holds a key, unless `force`.
    pub fn check_free(dir: &Path, force: bool) -> Result<(), KeyError> {
        match KEY_FILES.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
            Some(path) if !force => Err(KeyError::Exists { path }),
            _ => Ok(()),
        }
    }

    pub fn from_pem(pem: &str, origin: &Path, style: KidStyle) -> Result<Self, KeyError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let not_a_key = || KeyError::NotAKey { path: origin.to_path_buf() };
        let rsa_key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem)).ok();
        let (alg, pkcs8_pem, public_pem, members) = if let Some(key) = rsa_key {
            let public = key.to_public_key();
            let members = rsa_members(&public);
            let public_pem = public.to_public_key_pem(LineEnding::LF).map_err(|_| not_a_key())?;
            let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).map_err(|_| not_a_key())?.to_string();
            (KeyAlg::Rs384, pkcs8, public_pem, members)
        } else {
            let key = p384::SecretKey::from_pkcs8_pem(pem)
                .or_else(|_| p384::SecretKey::from_sec1_pem(pem))
                .map_err(|_| not_a_key())?;
            let public = key.public_key();
            let members = ec_members(&public);
            let public_pem = public.to_public_key_pem(LineEnding::LF).map_err(|_| not_a_key())?;
            let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).map_err(|_| not_a_key())?.to_string();
            (KeyAlg::Es384, pkcs8, public_pem, members)
        };
        let der = pem_der(&pkcs8_pem).ok_or_else(not_a_key)?;
        let signer = match alg {
            KeyAlg::Rs384 => Signer::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|_| not_a_key())?),
            KeyAlg::Es384 => Signer::Ec(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, &der).map_err(|_| not_a_key())?,
            ),
        };
        let kid = match style {
            KidStyle::Rfc7638 => thumbprint(&members),
            KidStyle::PemSha256_16 => pem_sha256_16(&public_pem),
        };
        Ok(Self {
            alg,
            kid,
            kid_style: style,
            pkcs8_pem,
            public_pem,
            public_members: members,
            signer,
            rng: SystemRandom::new(),
        })
    }

    /// Overrides the derived `kid` (a target may register a key under its own kid).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    pub fn require_alg(self, wanted: KeyAlg) -> Result<Self, KeyError> {
        if self.alg == wanted {
            Ok(self)
        } else {
            Err(KeyError::AlgMismatch { key: self.alg.name(), wanted: wanted.name() })
        }
    }

    pub fn private_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public JWK: `kty`, `n`/`e` or `crv`/`x`/`y`, `use: sig`, `alg`, `kid`.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.public_members.clone();
        jwk.insert("use".into(), json!("sig"));
        jwk.insert("alg".into(), json!(self.alg.name()));
        jwk.insert("kid".into(), json!(self.kid));
        Value::Object(jwk)
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// Signs with the key's own algorithm (RS384 or ES384).
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.sign_as(self.alg.name(), input).unwrap_or_else(|| unreachable!("a key signs with its own algorithm"))
    }

    /// Signs with another JWS algorithm the key type allows (RS256/RS512/PS384 for RSA keys);
    /// `None` when the key cannot (an EC P-384 key only does ES384).
    pub fn sign_as(&self, alg: &str, input: &[u8]) -> Option<Vec<u8>> {
        match &self.signer {
            Signer::Rsa(pair) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    "RS256" => &sig::RSA_PKCS1_SHA256,
                    "RS384" => &sig::RSA_PKCS1_SHA384,
                    "RS512" => &sig::RSA_PKCS1_SHA512,
                    "PS384" => &sig::RSA_PSS_SHA384,
                    _ => return None,
                };
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &self.rng, input, &mut out).ok()?;
                Some(out)
            }
            Signer::Ec(pair) if alg == "ES384" => pair.sign(&self.rng, input).ok().map(|s| s.as_ref().to_vec()),
            Signer::Ec(_) => None,
        }
    }

    /// Writes `private.pem` (mode 0600), `public.pem`, `jwk.json`, `jwks.json` and `key.json`
    /// (the kid and how it was derived) into `dir`; an existing key is replaced only with `force`.
    pub fn write_to(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, KeyError> {
        Self::check_free(dir, force)?;
        let unwritable =
            |path: &Path, e: std::io::Error| KeyError::Unwritable { path: path.to_path_buf(), reason: e.to_string() };
        std::fs::create_dir_all(dir).map_err(|e| unwritable(dir, e))?;
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
        let info = KeyInfo { alg: self.alg.name().into(), kid: self.kid.clone(), kid_style: self.kid_style };
        let files = [
            ("private.pem", self.pkcs8_pem.clone()),
            ("public.pem", self.public_pem.clone()),
            ("jwk.json", pretty(&self.jwk())),
            ("jwks.json", pretty(&self.jwks())),
            (KEY_INFO, serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"),
        ];
        let mut written = Vec::new();
        for (name, content) in files {
            let path = dir.join(name);
            write_file(&path, &content, name == "private.pem").map_err(|e| unwritable(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }
}

fn write_file(path: &Path, content: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)?.write_all(content.as_bytes())?;
    // `mode` applies only when the file is created; an existing file must be narrowed too.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_members(public: &rsa::RsaPublicKey) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kty".into(), json!("RSA"));
    m.insert("n".into(), json!(b64(&public.n().to_bytes_be())));
    m.insert("e".into(), json!(b64(&public.e().to_bytes_be())));
    m
}

fn ec_members(public: &p384::PublicKey) -> Map<String, Value> {
    let point = public.to_encoded_point(false);
    let mut m = Map::new();
    m.insert("kty".into(), json!("EC"));
    m.insert("crv".into(), json!("P-384"));
    m.insert("x".into(), json!(b64(point.x().map(|x| x.as_slice()).unwrap_or_default())));
    m.insert("y".into(), json!(b64(point.y().map(|y| y.as_slice()).unwrap_or_default())));
    m
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Map<String, Value>) -> String {
    let required: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["kty"],
    };
    let members: Vec<String> =
        required.iter().map(|k| format!("{}:{}", json!(k), jwk.get(*k).cloned().unwrap_or(Value::Null))).collect();
    b64(&Sha256::digest(format!("{{{}}}", members.join(",")).as_bytes()))
}

/// The RFC 7638 thumbprint of a key pair's public key.
pub fn thumbprint_of(key: &KeyPair) -> String {
    thumbprint(key.jwk().as_object().unwrap_or(&Map::new()))
}

/// base64url(SHA-256(PEM text))[..16], as integration guides that use it compute it.
pub fn pem_sha256_16(public_pem: &str) -> String {
    b64(&Sha256::digest(public_pem.as_bytes()))[..16].to_string()
}

/// The SubjectPublicKeyInfo PEM of a public JWK (RSA or P-384), e.g. to reproduce the
/// "HMAC with the public key" confusion, which uses this text as the secret.
pub fn public_pem_from_jwk(jwk: &Value) -> Option<String> {
    let field = |k: &str| jwk.get(k).and_then(Value::as_str).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    match jwk.get("kty")?.as_str()? {
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&field("n")?);
            let e = rsa::BigUint::from_bytes_be(&field("e")?);
            rsa::RsaPublicKey::new(n, e).ok()?.to_public_key_pem(LineEnding::LF).ok()
        }
        "EC" if jwk.get("crv")?.as_str()? == "P-384" => {
            let (x, y) = (field("x")?, field("y")?);
            let point = p384::EncodedPoint::from_affine_coordinates(
                p384::FieldBytes::from_slice(&x),
                p384::FieldBytes::from_slice(&y),
                false,
            );
            let key = Option::<p384::PublicKey>::from(p384::PublicKey::from_encoded_point(&point))?;
            key.to_public_key_pem(LineEnding::LF).ok()
        }
        _ => None,
    }
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es384_jwk_and_thumbprint() {
        let k = KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638).unwrap();
        let jwk = k.jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-384");
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 48);
        assert_eq!(k.kid, thumbprint(jwk.as_object().unwrap()));
        assert!(jwk.get("d").is_none());
        assert_eq!(public_pem_from_jwk(&jwk).unwrap(), k.public_pem());
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1's worked example.
        let jwk: Value = serde_json::from_str(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(thumbprint(jwk.as_object().unwrap()), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn signs_with_other_rsa_algorithms_but_ec_only_es384() {
        let k = KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638).unwrap();
        assert!(k.sign_as("RS256", b"x").is_none());
        assert_eq!(k.sign(b"x").len(), 96);
    }

    #[test]
    fn corrupt_pem_is_not_a_key() {
        let e = KeyPair::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            Path::new("k.pem"),
            KidStyle::Rfc7638,
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::NotAKey { .. }), "{e}");
    }
}
