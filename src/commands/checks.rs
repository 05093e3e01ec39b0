//! `oauth-harness checks`: the catalogue, for people writing scenarios.

use super::Output;
use crate::checks::{BUNDLES, catalogue};
use crate::exit::{Failure, Outcome};

pub fn print(out: &Output) -> Result<Outcome, Failure> {
    let width = catalogue().map(|c| c.id.len()).max().unwrap_or(0);
    let mut text =
        String::from("Checks (MUST fails the run; SHOULD warns unless --strict or the suite requires it):\n\n");
    for c in catalogue() {
        text.push_str(&format!("  {:width$}  {:6}  {:28}  {}\n", c.id, c.severity.label(), c.rule, c.summary));
    }
    let width = crate::checks::client::CHECKS.iter().map(|c| c.id.len()).max().unwrap_or(0);
    text.push_str("\nClient checks (`certify`; a client suite's `require` makes a SHOULD a MUST):\n\n");
    for c in crate::checks::client::CHECKS {
        text.push_str(&format!("  {:width$}  {:6}  {:28}  {}\n", c.id, c.severity.label(), c.rule, c.summary));
    }
    text.push_str("\nBundles (use the name in `checks:`):\n\n");
    for b in BUNDLES {
        text.push_str(&format!("  {}: {}\n      {}\n", b.name, b.summary, b.checks.join(", ")));
    }
    out.print(&text);
    Ok(Outcome::Passed)
}
