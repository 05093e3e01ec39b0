//! A test PKI for mTLS (`keys tls`), and loading TLS material for the HTTP client: client
//! identities from PEM or PKCS#12, CA bundles. Errors name the file at fault.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// Subject of the client certificate the PSC mock has registered.
pub const CLIENT_CN: &str = "harness-psc-client";
/// Subject of a second registered client (for "another client's auth_req_id").
pub const CLIENT_B_CN: &str = "harness-psc-client-b";
/// Subject of a certificate from the same CA that no client is registered with.
pub const UNREGISTERED_CN: &str = "someone-else";
/// Subject of a self-signed client certificate (RFC 8705 §2.2 `self_signed_tls_client_auth`).
pub const SELF_SIGNED_CN: &str = "harness-psc-self-signed";
pub const ORGANIZATION: &str = "oauth-harness test";
/// The files `keys tls` writes.
const PKI_FILES: &[&str] = &[
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
    "client.p12",
    "client-b.pem",
    "client-b.key",
    "unregistered-client.pem",
    "unregistered-client.key",
    "self-signed-client.pem",
    "self-signed-client.key",
];
/// Password of the test `client.p12`. Test material only.
pub const P12_PASSWORD: &str = "oauth-harness-test";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    Unreadable(#[from] crate::support::files::FileError),
    #[error("`{path}` holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("`{path}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("`{path}` cannot be opened: wrong password or not a PKCS#12 file ({reason})")]
    Pkcs12 { path: PathBuf, reason: String },
    #[error("the client certificate and key cannot be used together: {0}")]
    Identity(String),
    #[error("cannot write `{path}`: {reason}")]
    Unwritable { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generation(String),
    #[error("`{path}` already exists; the test PKI is not replaced")]
    Exists { path: PathBuf },
}

/// A client identity for mTLS: what reqwest needs, and the SHA-256 of the leaf certificate (the
/// `x5t#S256` a certificate-bound token must carry, RFC 8705 §3.1).
#[derive(Clone)]
pub struct ClientIdentity {
    pub identity: reqwest::Identity,
    /// The certificate chain and key as PEM, for the load transport's own rustls configuration.
    pub pem: crate::support::secret::Secret,
    pub cert_sha256: Vec<u8>,
    /// The CN of the leaf certificate's subject (PSC registers a client by it).
    pub subject_cn: Option<String>,
}

impl ClientIdentity {
    /// An identity from its PEM (certificate chain, then key), and what checks need to know of
    /// its leaf certificate.
    pub fn from_pem(pem: String, leaf_der: &[u8]) -> Result<Self, reqwest::Error> {
        let identity = reqwest::Identity::from_pem(pem.as_bytes())?;
        let subject_cn = x509_parser::parse_x509_certificate(leaf_der).ok().and_then(|(_, cert)| {
            cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned)
        });
        let pem = crate::support::secret::Secret::new(pem);
        Ok(Self { identity, pem, cert_sha256: Sha256::digest(leaf_der).to_vec(), subject_cn })
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

/// Certificates, keys and bundles are small: anything larger is not one.
const MAX_PKI_FILE: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    crate::support::files::read_bytes(path, MAX_PKI_FILE).map_err(PkiError::Unreadable)
}

fn pem_blocks(text: &str, label_suffix: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") && line.trim_end().ends_with(&format!("{label_suffix}-----")) {
            inside = true;
            body.clear();
        } else if line.starts_with("-----END ") && inside {
            inside = false;
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.trim()) {
                out.push(der);
            }
        } else if inside {
            body.push_str(line.trim());
        }
    }
    out
}

/// A client identity from a PEM certificate (chain) and a PEM private key.
pub fn identity_from_pem(cert_path: &Path, key_path: &Path) -> Result<ClientIdentity, PkiError> {
    let cert = String::from_utf8_lossy(&read(cert_path)?).into_owned();
    let key = String::from_utf8_lossy(&read(key_path)?).into_owned();
    let leaf = pem_blocks(&cert, "CERTIFICATE")
        .into_iter()
        .next()
        .ok_or_else(|| PkiError::NoCertificate { path: cert_path.to_path_buf() })?;
    if pem_blocks(&key, "PRIVATE KEY").is_empty() {
        return Err(PkiError::NoKey { path: key_path.to_path_buf() });
    }
    ClientIdentity::from_pem(format!("{cert}\n{key}"), &leaf).map_err(|e| PkiError::Identity(e.to_string()))
}

/// A client identity from a PKCS#12 file.
pub fn identity_from_pkcs12(path: &Path, password: &str) -> Result<ClientIdentity, PkiError> {
    let data = read(path)?;
    let store = p12_keystore::KeyStore::from_pkcs12(&data, password)
        .map_err(|e| PkiError::Pkcs12 { path: path.to_path_buf(), reason: e.to_string() })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| PkiError::Pkcs12 { path: path.to_path_buf(), reason: "no private key in it".into() })?;
    let leaf = chain.chain().first().ok_or_else(|| PkiError::NoCertificate { path: path.to_path_buf() })?;
    let mut pem = String::new();
    for cert in chain.chain() {
        pem.push_str(&to_pem("CERTIFICATE", cert.as_der()));
    }
    pem.push_str(&to_pem("PRIVATE KEY", chain.key()));
    ClientIdentity::from_pem(pem, leaf.as_der()).map_err(|e| PkiError::Identity(e.to_string()))
}

/// A PEM CA bundle: its certificates for reqwest, and the PEM itself for the load transport's
/// own rustls configuration.
#[derive(Clone, Default)]
pub struct CaBundle {
    pub certs: Vec<reqwest::Certificate>,
    pub pem: Vec<u8>,
}

impl CaBundle {
    pub fn from_pem(pem: &[u8]) -> Option<Self> {
        let certs = reqwest::Certificate::from_pem_bundle(pem).ok().filter(|c| !c.is_empty())?;
        Some(Self { certs, pem: pem.to_vec() })
    }
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaBundle({} certificates)", self.certs.len())
    }
}

/// The certificates of a PEM CA bundle.
pub fn ca_bundle(path: &Path) -> Result<CaBundle, PkiError> {
    let bytes = read(path)?;
    CaBundle::from_pem(&bytes).ok_or_else(|| PkiError::NoCertificate { path: path.to_path_buf() })
}

fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, cn);
    dn
}

/// Writes a CA, a server certificate for 127.0.0.1/localhost, the registered client's certificate
/// (PEM and PKCS#12), a second registered client's, and an unregistered one's, all signed by the
/// CA; and a self-signed client certificate.
pub fn generate(out: &Path, force: bool) -> Result<Vec<PathBuf>, PkiError> {
    if let Some(path) = PKI_FILES.iter().map(|f| out.join(f)).find(|p| p.exists()).filter(|_| !force) {
        return Err(PkiError::Exists { path });
    }
    let gen_err = |e: rcgen::Error| PkiError::Generation(e.to_string());
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.distinguished_name = dn("oauth-harness test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let leaf = |cn: &str, server: bool| -> Result<(rcgen::Certificate, KeyPair), PkiError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params.distinguished_name = dn(cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if server {
            params.subject_alt_names = vec![
                SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
                SanType::DnsName("localhost".try_into().map_err(gen_err)?),
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
        Ok((cert, key))
    };
    let (server, server_key) = leaf("localhost", true)?;
    let (client, client_key) = leaf(CLIENT_CN, false)?;
    let (client_b, client_b_key) = leaf(CLIENT_B_CN, false)?;
    let (unregistered, unregistered_key) = leaf(UNREGISTERED_CN, false)?;
    let self_signed_key = KeyPair::generate().map_err(gen_err)?;
    let mut self_signed_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    self_signed_params.distinguished_name = dn(SELF_SIGNED_CN);
    self_signed_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    self_signed_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let self_signed = self_signed_params.self_signed(&self_signed_key).map_err(gen_err)?;

    let mut store = p12_keystore::KeyStore::new();
    let chain = [client.der().as_ref(), ca_cert.der().as_ref()]
        .iter()
        .map(|der| p12_keystore::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Generation(e.to_string()))?;
    let key_id = Sha256::digest(client.der().as_ref())[..20].to_vec();
    store.add_entry(
        "client",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            client_key.serialize_der(),
            key_id,
            chain,
        )),
    );
    let p12 = store.writer(P12_PASSWORD).write().map_err(|e| PkiError::Generation(e.to_string()))?;

    let files: Vec<(&str, Vec<u8>)> = vec![
        ("ca.pem", ca_cert.pem().into_bytes()),
        ("server.pem", format!("{}{}", server.pem(), ca_cert.pem()).into_bytes()),
        ("server.key", server_key.serialize_pem().into_bytes()),
        ("client.pem", client.pem().into_bytes()),
        ("client.key", client_key.serialize_pem().into_bytes()),
        ("client.p12", p12),
        ("client-b.pem", client_b.pem().into_bytes()),
        ("client-b.key", client_b_key.serialize_pem().into_bytes()),
        ("unregistered-client.pem", unregistered.pem().into_bytes()),
        ("unregistered-client.key", unregistered_key.serialize_pem().into_bytes()),
        ("self-signed-client.pem", self_signed.pem().into_bytes()),
        ("self-signed-client.key", self_signed_key.serialize_pem().into_bytes()),
    ];
    std::fs::create_dir_all(out)
        .map_err(|e| PkiError::Unwritable { path: out.to_path_buf(), reason: e.to_string() })?;
    let mut written = Vec::new();
    for (name, content) in files {
        let path = out.join(name);
        std::fs::write(&path, content)
            .map_err(|e| PkiError::Unwritable { path: path.clone(), reason: e.to_string() })?;
        written.push(path);
    }
    Ok(written)
}
