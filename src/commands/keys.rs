//! `oauth-harness keys …`: key pairs and JWKS for private_key_jwt clients, and a test PKI.

use super::Output;
use crate::cli::{KeysCommand, KeysGenerateArgs, KeysJwksArgs};
use crate::exit::{Failure, Outcome};
use crate::support::keys::KeyPair;

pub fn keys(command: KeysCommand, out: &Output) -> Result<Outcome, Failure> {
    match command {
        KeysCommand::Generate(args) => generate(args, out),
        KeysCommand::Jwks(args) => jwks(args, out),
        KeysCommand::Tls { out: dir, force } => {
            let files = crate::support::pki::generate(&dir, force)?;
            let mut text: String = files.iter().map(|f| format!("wrote {}\n", f.display())).collect();
            text.push_str("client.p12 password: the test password in src/support/pki.rs (P12_PASSWORD)\n");
            out.print(&text);
            Ok(Outcome::Passed)
        }
    }
}

fn generate(args: KeysGenerateArgs, out: &Output) -> Result<Outcome, Failure> {
    // Refused before the (slow) generation: an existing key is never replaced by accident.
    KeyPair::check_free(&args.out, args.force)?;
    let key = KeyPair::generate(args.alg, args.bits, args.kid)?;
    let files = key.write_to(&args.out, args.force)?;
    let mut text = format!("{} key, kid {}\n", key.alg.name(), key.kid);
    for f in files {
        text.push_str(&format!("  wrote {}\n", f.display()));
    }
    text.push_str("Register jwks.json with the server (by value), or serve it at a URL (by URL).\n");
    out.print(&text);
    Ok(Outcome::Passed)
}

fn jwks(args: KeysJwksArgs, out: &Output) -> Result<Outcome, Failure> {
    let mut keys = Vec::new();
    for path in &args.keys {
        keys.push(KeyPair::load(path, args.kid)?.jwk());
    }
    let jwks = serde_json::json!({ "keys": keys });
    out.println(&serde_json::to_string_pretty(&jwks).unwrap_or_default());
    Ok(Outcome::Passed)
}
