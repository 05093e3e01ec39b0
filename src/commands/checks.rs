//! `oauth-harness checks`: the catalogue, for people writing scenarios.

use crate::checks::{BUNDLES, catalogue};
use crate::exit;

pub fn print() -> u8 {
    let width = catalogue().map(|c| c.id.len()).max().unwrap_or(0);
    println!("Checks (MUST fails the run; SHOULD warns unless --strict or the suite requires it):\n");
    for c in catalogue() {
        println!("  {:width$}  {:6}  {:28}  {}", c.id, c.severity.label(), c.rule, c.summary);
    }
    println!("\nBundles (use the name in `checks:`):\n");
    for b in BUNDLES {
        println!("  {}: {}\n      {}", b.name, b.summary, b.checks.join(", "));
    }
    exit::SUCCESS
}
