//! Counted nouns in what users read: "1 problem", "3 problems", never "problem(s)".

use std::fmt::Display;

/// `n` and the noun, plural unless `n` is one (every noun we count takes an `s`).
pub fn count<N: Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    let plural = if n == N::from(1) { "" } else { "s" };
    format!("{n} {noun}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1usize, "problem"), "1 problem");
        assert_eq!(count(0u64, "request"), "0 requests");
        assert_eq!(count(3u32, "case"), "3 cases");
    }
}
