//! `oauth-harness evidence verify`: recompute the manifest of an evidence bundle.

use super::Output;
use crate::cli::EvidenceCommand;
use crate::evidence::{self, EvidenceError};
use crate::exit::{Failure, Outcome};
use crate::support::files;

pub fn evidence(command: EvidenceCommand, out: &Output) -> Result<Outcome, Failure> {
    let EvidenceCommand::Verify { dir, jwk } = command;
    let jwk = match jwk.as_deref() {
        None => None,
        Some(path) => {
            let text = files::read_text(path, 64 * 1024).map_err(|e| EvidenceError::Jwk(e.to_string()))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| EvidenceError::Jwk(format!("not JSON: {e}")))?,
            )
        }
    };
    let v = evidence::verify(&dir, jwk.as_ref())?;
    let mut text = String::new();
    if v.manifest_changed {
        text.push_str(&format!(
            "changed:    {} (its digest no longer matches {})\n",
            evidence::MANIFEST,
            evidence::MANIFEST_DIGEST
        ));
    }
    for f in &v.changed {
        text.push_str(&format!("changed:    {f}\n"));
    }
    for f in &v.missing {
        text.push_str(&format!("missing:    {f}\n"));
    }
    for f in &v.unexpected {
        text.push_str(&format!("unexpected: {f} (not in the manifest)\n"));
    }
    match &v.signature {
        Some(Ok(())) => text.push_str(&format!("signature:  valid ({})\n", evidence::SIGNATURE)),
        Some(Err(why)) => text.push_str(&format!("signature:  INVALID — {why}\n")),
        None => {}
    }
    if v.intact() {
        let verb = if v.checked == 1 { "matches" } else { "match" };
        text.push_str(&format!("intact: {} {verb} the manifest\n", crate::support::text::count(v.checked, "file")));
        out.print(&text);
        Ok(Outcome::Passed)
    } else {
        text.push_str("NOT intact: the bundle was changed after it was written\n");
        out.print(&text);
        Ok(Outcome::Failed)
    }
}
