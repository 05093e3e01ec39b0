//! `oauth-harness evidence verify`: recompute the manifest of an evidence bundle.

use super::{Output, Plain};
use crate::cli::EvidenceCommand;
use crate::evidence;
use crate::exit;

pub fn evidence(command: EvidenceCommand, out: Output) -> u8 {
    let EvidenceCommand::Verify { dir, jwk } = command;
    let jwk = match jwk.as_deref().map(std::fs::read_to_string).transpose() {
        Ok(text) => match text.map(|t| serde_json::from_str::<serde_json::Value>(&t)).transpose() {
            Ok(v) => v,
            Err(e) => {
                out.error(&Plain::new(format!("the JWK file is not JSON: {e}")));
                return exit::INVALID_INPUT;
            }
        },
        Err(e) => {
            out.error(&Plain::new(format!("cannot read the JWK file: {e}")));
            return exit::INVALID_INPUT;
        }
    };
    let v = match evidence::verify(&dir, jwk.as_ref()) {
        Ok(v) => v,
        Err(e) => {
            out.error(&Plain::new(e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    if v.manifest_changed {
        println!("changed:    {} (its digest no longer matches {})", evidence::MANIFEST, evidence::MANIFEST_DIGEST);
    }
    for f in &v.changed {
        println!("changed:    {f}");
    }
    for f in &v.missing {
        println!("missing:    {f}");
    }
    for f in &v.unexpected {
        println!("unexpected: {f} (not in the manifest)");
    }
    match &v.signature {
        Some(Ok(())) => println!("signature:  valid ({})", evidence::SIGNATURE),
        Some(Err(why)) => println!("signature:  INVALID — {why}"),
        None => {}
    }
    if v.intact() {
        println!("intact: {} file(s) match the manifest", v.checked);
        exit::SUCCESS
    } else {
        println!("NOT intact: the bundle was changed after it was written");
        exit::CHECK_FAILED
    }
}
