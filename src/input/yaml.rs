//! Parsing YAML into the raw input types, with the same options everywhere (a duplicate key is an
//! error; aliases and nesting are bounded), and the parser's errors said in the user's words.

use serde::de::DeserializeOwned;

use crate::support::diagnostics::{LocatedError, SourceFile, Span, did_you_mean};

/// More values than this in one file (aliases count each time they are used) and it is refused:
/// no scenario comes near it, an alias bomb goes far past it.
pub const MAX_NODES: usize = 100_000;
/// Deeper nesting than this is refused.
pub const MAX_DEPTH: usize = 32;

/// How a field should look, for "wrong shape" messages: (key, what it must be).
pub type Shapes = &'static [(&'static str, &'static str)];

/// Parses `source` into `T`; the first problem becomes a located error.
pub fn parse<T: DeserializeOwned>(source: &SourceFile, shapes: Shapes) -> Result<T, Box<LocatedError>> {
    let options = || {
        serde_saphyr::options! {
            duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
            budget: serde_saphyr::budget! { max_nodes: MAX_NODES, max_depth: MAX_DEPTH },
        }
    };
    // First the whole document, aliases expanded, against the budget: an alias bomb is refused
    // wherever it sits, before a typed parse could stop early at an unrelated problem.
    serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(&source.text, options())
        .map_err(|e| Box::new(error(source, &e, shapes)))?;
    serde_saphyr::from_str_with_options(&source.text, options()).map_err(|e| Box::new(error(source, &e, shapes)))
}

/// A parser error as the user should read it: what is wrong, where, and what to write instead.
pub fn error(source: &SourceFile, err: &serde_saphyr::Error, shapes: Shapes) -> LocatedError {
    let plain = err.without_snippet().to_string();
    let raw = strip_location(&plain);
    let (line, column) = err.location().map(|l| (l.line() as u32, l.column() as u32)).unwrap_or((1, 1));
    // A missing value is located at the colon of its key (`name:`): look one column on.
    let past = u32::from(raw.starts_with("cannot deserialize null"));
    let key = key_at(&source.text, line, column + past);
    let said = Said::from(raw, key.as_deref(), shapes);
    // Underline the whole key or value the message names, when it starts at the location.
    let mut span = Span::at(&source.text, line, column, 1);
    if let Some(named) = raw.split('`').nth(1).filter(|n| !n.is_empty()) {
        if source.text.get(span.offset..).is_some_and(|rest| rest.starts_with(named)) {
            span.len = named.len();
        }
    }
    let mut located = source.error_at(span, said.message);
    if let Some(label) = said.label {
        located = located.with_label(label);
    }
    if let Some(help) = said.help {
        located = located.with_help(help);
    }
    located
}

/// serde-saphyr says "error: line L column C: message" and sometimes "message at line L, column C".
fn strip_location(plain: &str) -> &str {
    let message = plain.strip_prefix("error: ").unwrap_or(plain);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => message,
    };
    match message.find(" at line ") {
        Some(i) if message[i..].contains(", column ") => &message[..i],
        _ => message,
    }
}

/// The key whose value is at (line, column): the last `key:` on that line before the column.
fn key_at(text: &str, line: u32, column: u32) -> Option<String> {
    let src = text.lines().nth(line.saturating_sub(1) as usize)?;
    let before: String = src.chars().take(column.saturating_sub(1) as usize).collect();
    let mut best = None;
    let mut word = String::new();
    for c in before.chars() {
        if c.is_ascii_alphanumeric() || "_-.$".contains(c) {
            word.push(c);
        } else {
            if c == ':' && !word.is_empty() {
                best = Some(word.clone());
            }
            word.clear();
        }
    }
    best
}

struct Said {
    message: String,
    label: Option<String>,
    help: Option<String>,
}

impl Said {
    fn from(raw: &str, key: Option<&str>, shapes: Shapes) -> Self {
        let said = |message: String, label: Option<&str>, help: Option<String>| Said {
            message,
            label: label.map(str::to_string),
            help,
        };
        let shape = key.and_then(|k| shapes.iter().find(|(name, _)| *name == k)).map(|(_, s)| *s);
        let named = |what: &str| match key {
            Some(k) => format!("`{k}` must be {what}"),
            None => format!("expected {what} here"),
        };
        if let Some(rest) = raw.strip_prefix("unknown field `") {
            let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let candidates = candidates(expected);
            let help = match did_you_mean(field, candidates.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("valid keys here: {}", candidates.join(", ")),
            };
            return said(format!("unknown key `{field}`"), Some("unknown key"), Some(help));
        }
        if let Some(rest) = raw.strip_prefix("unknown variant `") {
            let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let candidates = candidates(expected);
            let help = match did_you_mean(value, candidates.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("one of: {}", candidates.join(", ")),
            };
            let message = match key {
                Some(k) => format!("`{value}` is not a valid `{k}`"),
                None => format!("`{value}` is not a valid value here"),
            };
            return said(message, Some("unknown value"), Some(help));
        }
        if let Some(rest) = raw.strip_prefix("duplicate mapping key: ") {
            let dup = rest.split(',').next().unwrap_or(rest).trim();
            return said(
                format!("duplicate key `{dup}`: it appears twice in the same mapping"),
                Some("second time"),
                Some("keep one of them".into()),
            );
        }
        if raw.starts_with("budget breached") {
            let what = if raw.contains("Depth") { "nesting too deep" } else { "too many nodes" };
            return said(
                format!(
                    "{what}: the file is refused (more than {MAX_NODES} values or {MAX_DEPTH} levels; an alias counts each time it is used)"
                ),
                None,
                Some("a scenario never needs this much: look for a runaway alias (`*name`)".into()),
            );
        }
        if let Some(ty) = raw.strip_prefix("invalid ") {
            if let Some(range) = integer_range(ty.trim()) {
                let what = shape.map(str::to_string).unwrap_or_else(|| format!("a whole number from {range}"));
                return said(named(&what), Some("out of range"), None);
            }
        }
        if raw.starts_with("invalid floating point") || raw.starts_with("invalid float") {
            return said(named(shape.unwrap_or("a number")), Some("not a number"), None);
        }
        if let Some(rest) = raw.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            return said(raw.to_string(), Some("in this mapping"), Some(format!("add `{field}:` to it")));
        }
        if raw.starts_with("non-finite float") {
            return said(named(shape.unwrap_or("a finite number")), Some("not a finite number"), None);
        }
        if raw.starts_with("expected sequence start") || raw.contains("expected a sequence") {
            return said(named(shape.unwrap_or("a list (`[a, b]`)")), Some("not a list"), None);
        }
        if raw.starts_with("expected mapping start")
            || raw.contains("expected a map")
            || raw.contains("expected struct")
        {
            return said(named(shape.unwrap_or("a mapping (`key: value` pairs)")), Some("not a mapping"), None);
        }
        if raw.starts_with("expected string scalar") {
            return said(named(shape.unwrap_or("text (a single value)")), Some("not text"), None);
        }
        if raw.starts_with("data did not match any variant") {
            return said(named(shape.unwrap_or("a value of another shape")), Some("not understood"), None);
        }
        if raw.starts_with("invalid type") || raw.starts_with("invalid value") {
            if let Some(shape) = shape {
                return said(named(shape), None, Some(raw.to_string()));
            }
        }
        if raw.starts_with("unexpected end of input") {
            return said(
                "the file ends before anything was read: it is empty, or holds only comments".into(),
                None,
                None,
            );
        }
        if raw.starts_with("cannot deserialize null") {
            let message = match key {
                Some(k) => format!("`{k}` has no value"),
                None => "a value is missing here".into(),
            };
            return said(message, Some("no value"), Some("give it a value, or remove the key".into()));
        }
        if raw.starts_with("recursive references") {
            return said(
                "this alias refers to a value that contains it (`&a [*a]`): a loop is refused".into(),
                Some("loops back"),
                Some("an alias (`*name`) may only repeat a value defined whole before it".into()),
            );
        }
        if raw.starts_with("alias references unknown anchor") {
            return said(
                "this alias (`*name`) names no anchor (`&name`) defined before it".into(),
                Some("unknown alias"),
                Some("define `&name` on a value above, or write the value out".into()),
            );
        }
        // What is left are the scanner's own words about broken YAML syntax.
        if raw.contains("placement")
            || raw.starts_with("unclosed")
            || raw.starts_with("invalid indentation")
            || raw.contains("did not find expected")
            || raw.contains("while scanning")
            || raw.contains("while parsing")
        {
            return said(
                format!("this is not valid YAML: {raw}"),
                None,
                Some("look for an unclosed `[`, `{` or quote above this point, or a tab used for indentation".into()),
            );
        }
        said(raw.to_string(), None, None)
    }
}

fn candidates(expected: &str) -> Vec<&str> {
    expected
        .split(['`', ',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty() && !matches!(*w, "expected" | "one" | "of" | "or"))
        .collect()
}

fn integer_range(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "u8" => "0 to 255",
        "u16" => "0 to 65535",
        "u32" => "0 to 4294967295",
        "u64" | "usize" => "0 to 18446744073709551615",
        "i32" => "-2147483648 to 2147483647",
        "i64" => "-9223372036854775808 to 9223372036854775807",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        port: Option<u16>,
        list: Option<Vec<String>>,
    }

    fn message(text: &str) -> (String, String, Option<String>) {
        let source = SourceFile::new(Path::new("d.yaml"), text.to_string());
        let e = parse::<Doc>(&source, &[("list", "a list of names, e.g. `[a, b]`")]).unwrap_err();
        (e.message, e.location, e.help)
    }

    #[test]
    fn errors_read_in_the_users_words() {
        assert_eq!(message("name: a\nname: b\n").0, "duplicate key `name`: it appears twice in the same mapping");
        assert_eq!(message("name: a\nport: 70000\n").0, "`port` must be a whole number from 0 to 65535");
        assert_eq!(message("name: a\nlist: x\n").0, "`list` must be a list of names, e.g. `[a, b]`");
        // The parser's own words ("unexpected end of input", "use Option<String>", "weak
        // recursion types") never reach the user.
        assert!(message("").0.starts_with("the file ends before anything was read"));
        assert_eq!(message("name:\n").0, "`name` has no value");
        assert!(message("name: a\nlist: &a [*a]\n").0.starts_with("this alias refers to a value that contains it"));
        assert!(message("name: a\nlist: [*b]\n").0.starts_with("this alias (`*name`) names no anchor"));
        let (m, _, help) = message("name: a\nlist: [a, b\n");
        assert_eq!(m, "this is not valid YAML: unclosed bracket '['");
        assert!(help.is_some_and(|h| h.contains("unclosed `[`")));
        let (m, loc, help) = message("name: a\nnmae: b\n");
        assert_eq!(
            (m.as_str(), loc.as_str(), help.as_deref()),
            ("unknown key `nmae`", "d.yaml:2:1", Some("did you mean `name`?"))
        );
    }

    #[test]
    fn an_alias_bomb_is_too_many_nodes() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..8 {
            let prev = if i == 0 { "*a".to_string() } else { format!("*b{}", i - 1) };
            bomb.push_str(&format!("b{i}: &b{i} [{}]\n", vec![prev; 10].join(",")));
        }
        let source = SourceFile::new(Path::new("b.yaml"), bomb);
        let e = parse::<serde_json::Value>(&source, &[]).unwrap_err();
        assert!(e.message.starts_with("too many nodes"), "{}", e.message);
    }
}
