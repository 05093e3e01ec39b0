//! `oauth-harness keys …`: key pairs and JWKS for private_key_jwt clients.

use super::{Output, Plain};
use crate::cli::{KeysCommand, KeysGenerateArgs, KeysJwksArgs};
use crate::exit;
use crate::keys::KeyPair;

pub fn keys(command: KeysCommand, out: Output) -> u8 {
    match command {
        KeysCommand::Generate(args) => generate(args, out),
        KeysCommand::Jwks(args) => jwks(args, out),
        KeysCommand::Tls { out: dir } => match crate::pki::generate(&dir) {
            Ok(files) => {
                for f in files {
                    println!("wrote {}", f.display());
                }
                println!("client.p12 password: the test password in src/pki.rs (P12_PASSWORD)");
                exit::SUCCESS
            }
            Err(e) => {
                out.error(&Plain::new(e.to_string()));
                exit::INVALID_INPUT
            }
        },
    }
}

fn generate(args: KeysGenerateArgs, out: Output) -> u8 {
    let key = match KeyPair::generate(args.alg, args.bits, args.kid) {
        Ok(k) => k,
        Err(e) => {
            out.error(&Plain::new(e.to_string()));
            return exit::RUNTIME_ERROR;
        }
    };
    match key.write_to(&args.out) {
        Ok(files) => {
            println!("{} key, kid {}", key.alg.name(), key.kid);
            for f in files {
                println!("  wrote {}", f.display());
            }
            println!("Register jwks.json with the server (by value), or serve it at a URL (by URL).");
            exit::SUCCESS
        }
        Err(e) => {
            out.error(&Plain::new(e.to_string()).help("choose a folder you can write to with --out"));
            exit::INVALID_INPUT
        }
    }
}

fn jwks(args: KeysJwksArgs, out: Output) -> u8 {
    let mut keys = Vec::new();
    for path in &args.keys {
        match KeyPair::load(path, args.kid) {
            Ok(k) => keys.push(k.jwk()),
            Err(e) => {
                out.error(&Plain::new(e.to_string()));
                return exit::INVALID_INPUT;
            }
        }
    }
    let jwks = serde_json::json!({ "keys": keys });
    println!("{}", serde_json::to_string_pretty(&jwks).unwrap_or_default());
    exit::SUCCESS
}
