//! Errors in our input, shown like compiler errors: a title, `file:line:column`, the line, a
//! caret, and a hint. Every load error of scenarios and targets ends up as a [`LocatedError`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// A file we read, kept whole so errors can quote it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<String>,
    /// What errors quote: the text, with the values of secret keys masked.
    shown: Arc<String>,
}

/// A position in a [`SourceFile`]: 1-based line and column, byte offset and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub line: u32,
    pub column: u32,
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn from_location(location: &serde_saphyr::Location) -> Self {
        let span = location.span();
        Self {
            line: location.line() as u32,
            column: location.column() as u32,
            offset: span.byte_offset().unwrap_or(0) as usize,
            len: span.byte_len().unwrap_or(1).max(1) as usize,
        }
    }
}

impl Span {
    /// The span of `len` bytes at 1-based `line` and `column` (in characters) of `text`, clamped
    /// to the text: the offset always agrees with the line and column a header prints.
    pub fn at(text: &str, line: u32, column: u32, len: usize) -> Self {
        let mut offset = 0;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            if i + 1 == line as usize {
                let within: usize = l.chars().take(column.saturating_sub(1) as usize).map(char::len_utf8).sum();
                offset += within;
                break;
            }
            offset += l.len();
        }
        let offset = offset.min(text.len());
        Self { line, column, offset, len: len.min(text.len() - offset).max(1) }
    }
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Self {
        let text = Arc::new(text);
        Self { path: path.to_path_buf(), shown: text.clone(), text }
    }

    /// The same file, whose errors quote it with the values of `keys` masked (`*` for every
    /// character, so columns stay right): a line with a secret on it can be shown safely.
    pub fn masking(mut self, keys: &[&str]) -> Self {
        let masked = mask_values(&self.text, keys, |value| "*".repeat(value.chars().count()));
        self.shown = Arc::new(mask_url_passwords(&mask_continuations(&masked, keys)));
        self
    }

    pub fn error_at(&self, span: Span, message: impl Into<String>) -> LocatedError {
        // The offset is recomputed from the line and column, so the snippet always shows the
        // line the header names; clamped, so a parser's location can never make us panic.
        let span = if span.line > 0 { Span::at(&self.shown, span.line, span.column, span.len) } else { span };
        let offset = span.offset.min(self.shown.len());
        let len = span.len.min(self.shown.len() - offset);
        LocatedError {
            message: message.into(),
            label: String::from("here"),
            help: None,
            location: format!("{}:{}:{}", self.path.display(), span.line, span.column),
            src: NamedSource::new(self.path.display().to_string(), self.shown.clone()),
            span: (offset, len).into(),
        }
    }
}

/// `text` with the password of every `scheme://user:password@host` masked (`*` for every
/// character): a URL with credentials in it is refused, and the line the error quotes must not
/// show them either.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after.find(|c: char| "/?#\"', }]\n\r\t ".contains(c)).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(&"*".repeat(authority[colon + 1..at].chars().count()));
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with the scalar value of every `key:` in `keys` replaced by `replace(value)`, in
/// block (`key: value`) and flow (`{ key: value, … }`) style, quoted or not. Comments and the
/// rest of the line stay as they were.
pub fn mask_values(text: &str, keys: &[&str], replace: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        let mut depth = 0usize; // unclosed `{` / `[` before the cursor on this line
        'scan: loop {
            // The next `key:` of interest on what is left of the line.
            let mut found = None;
            for key in keys {
                let mut from = 0;
                while let Some(i) = rest[from..].find(key) {
                    let start = from + i;
                    let end = start + key.len();
                    let word_before =
                        rest[..start].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
                    let after = rest[end..].trim_start_matches([' ', '\t']);
                    let after_quote = rest[end..].strip_prefix(['"', '\'']).unwrap_or(&rest[end..]);
                    let is_key = !word_before
                        && (after.starts_with(':') || after_quote.trim_start_matches([' ', '\t']).starts_with(':'));
                    if is_key && found.is_none_or(|(s, _)| start < s) {
                        found = Some((start, end));
                    }
                    from = end;
                }
            }
            let Some((start, end)) = found else {
                out.push_str(rest);
                break 'scan;
            };
            if rest[..start].contains('#') {
                out.push_str(rest);
                break 'scan;
            }
            depth += rest[..start].matches(['{', '[']).count();
            depth = depth.saturating_sub(rest[..start].matches(['}', ']']).count());
            let colon = start + rest[start..].find(':').unwrap_or(end - start);
            let value_start =
                colon + 1 + rest[colon + 1..].len() - rest[colon + 1..].trim_start_matches([' ', '\t']).len();
            let value = &rest[value_start..];
            let len = scalar_len(value, depth > 0);
            out.push_str(&rest[..value_start]);
            if len > 0 {
                out.push_str(&replace(&value[..len]));
            }
            rest = &value[len..];
        }
    }
    out
}

/// Masks what [`mask_values`] cannot see on one line: a secret whose value goes on past its
/// line (a block scalar, a flow collection, a quoted string continued, the value on the next
/// line) or sits under a complex key (`? client_secret` / `: value`). Every line indented
/// deeper than the key that follows it has its characters masked, and so does the rest of a
/// key line whose value starts a multi-line form. Errors quote whole lines; this errs towards
/// masking too much.
fn mask_continuations(text: &str, keys: &[&str]) -> String {
    let indent_of = |line: &str| line.len() - line.trim_start_matches([' ', '\t']).len();
    let stars = |s: &str| s.chars().map(|c| if c.is_whitespace() { c } else { '*' }).collect::<String>();
    let names_key = |s: &str| {
        let s = s.trim_start_matches(['"', '\'']);
        keys.iter().find(|k| s.starts_with(**k) && !s[k.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let mut out = String::with_capacity(text.len());
    // The indentation of the key whose value is still going on, if any.
    let mut open: Option<usize> = None;
    // A `? key` line was seen at this indentation: its `:` line holds the value.
    let mut complex: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = indent_of(line);
        let body = &line[indent..];
        if let Some(at) = open {
            if body.trim().is_empty() || indent > at {
                out.push_str(&stars(line));
                continue;
            }
            open = None;
        }
        if complex == Some(indent) && body.starts_with(':') {
            out.push_str(&line[..indent + 1]);
            out.push_str(&stars(&line[indent + 1..]));
            open = Some(indent);
            complex = None;
            continue;
        }
        complex = None;
        if body.strip_prefix("? ").is_some_and(|rest| names_key(rest.trim_start()).is_some()) {
            complex = Some(indent);
        }
        // `key:` with nothing after it, or a value that starts a multi-line form.
        let key_value = names_key(body.strip_prefix("- ").unwrap_or(body)).and_then(|_| {
            let colon = body.find(':')?;
            Some(body[colon + 1..].trim())
        });
        if let Some(value) = key_value {
            let unterminated = |q: char| value.starts_with(q) && (value.len() < 2 || !value.ends_with(q));
            let multi_line = value.is_empty()
                || value.starts_with(['|', '>', '[', '{', '&', '!'])
                || unterminated('"')
                || unterminated('\'');
            if multi_line {
                let colon = indent + body.find(':').unwrap_or(0) + 1;
                out.push_str(&line[..colon]);
                out.push_str(&stars(&line[colon..]));
                open = Some(indent);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// The length of the scalar at the start of `value`: a quoted string, or a plain one up to the
/// end of the line, a comment, or (inside a flow collection) the next `,` `}` `]`.
fn scalar_len(value: &str, in_flow: bool) -> usize {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'"') => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return i + 1,
                    _ => i += 1,
                }
            }
            value.trim_end_matches(['\n', '\r']).len()
        }
        Some(b'\'') => {
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return i + 1;
                }
                i += 1;
            }
            value.trim_end_matches(['\n', '\r']).len()
        }
        Some(b'|' | b'>' | b'{' | b'[') | None => 0,
        Some(_) => {
            let mut end = value.trim_end_matches(['\n', '\r']).len();
            if let Some(c) = value.find(" #") {
                end = end.min(c);
            }
            if in_flow {
                if let Some(c) = value.find([',', '}', ']']) {
                    end = end.min(c);
                }
            }
            value[..end].trim_end().len()
        }
    }
}

/// One problem in one input file, with its location.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{message}\n  --> {location}")]
pub struct LocatedError {
    pub message: String,
    /// `file:line:column`, also printed in the title so plain logs carry it.
    pub location: String,
    pub label: String,
    #[help]
    pub help: Option<String>,
    #[source_code]
    pub src: NamedSource<Arc<String>>,
    #[label("{label}")]
    pub span: SourceSpan,
}

impl LocatedError {
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// "did you mean `token`?" — the nearest candidate within edit distance 2.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Renders a diagnostic for a terminal or a log, deterministic when `color` is false.
pub fn render(diagnostic: &dyn Diagnostic, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let mut out = String::new();
    // Lines are never wrapped: a URL or a path broken across lines cannot be copied.
    let handler =
        GraphicalReportHandler::new_themed(theme).with_width(100).with_wrap_lines(false).with_break_words(false);
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = diagnostic.to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_close_keys_only() {
        assert_eq!(did_you_mean("tokn", ["id", "token", "expect"]), Some("token"));
        assert_eq!(did_you_mean("zzzzzz", ["id", "token"]), None);
    }

    #[test]
    fn url_passwords_are_masked_and_columns_kept() {
        let text = "issuer: http://admin:Hunter2@127.0.0.1:8080/x\nurl: { u: 'https://a@b/', v: http://h/p?q=1 }\n";
        let masked = mask_url_passwords(text);
        assert_eq!(
            masked,
            "issuer: http://admin:*******@127.0.0.1:8080/x\nurl: { u: 'https://a@b/', v: http://h/p?q=1 }\n"
        );
        assert_eq!(masked.len(), text.len());
    }

    #[test]
    fn secret_values_are_masked_in_block_and_flow_style() {
        let text = "a:\n  client_secret: hunter22 # c\n  x: { client_id: y, client_secret: \"q\\\"z\", s: 1 }\n  pkcs12_password: 'it''s'\n";
        let masked = mask_values(text, &["client_secret", "pkcs12_password"], |v| "*".repeat(v.chars().count()));
        assert_eq!(
            masked,
            "a:\n  client_secret: ******** # c\n  x: { client_id: y, client_secret: ******, s: 1 }\n  pkcs12_password: *******\n"
        );
        let f = SourceFile::new(Path::new("t.yaml"), text.into()).masking(&["client_secret"]);
        let e = f.error_at(Span { line: 2, column: 18, offset: 0, len: 8 }, "bad");
        assert!(!render(&e, false).contains("hunter22"), "{}", render(&e, false));
    }

    #[test]
    fn secret_values_over_several_lines_are_masked() {
        for text in [
            "c:\n  client_secret: >-\n    hunter22secret\n  client_id: x\n",
            "c:\n  client_secret: \"hunter22\n    secret\"\n  client_id: x\n",
            "c:\n  \"client_secret\" : hunter22secret\n",
            "c:\n  ? client_secret\n  : hunter22secret\n",
            "c:\n  client_secret: [hunter22secret]\n",
            "c:\n  client_secret:\n    hunter22secret\n",
            "c:\n  client_secret: |\n\n    hunter22secret\n",
        ] {
            let f = SourceFile::new(Path::new("t.yaml"), text.into()).masking(&["client_secret"]);
            assert!(!f.shown.contains("hunter22"), "{}", f.shown);
            assert_eq!(f.shown.len(), text.len(), "columns stay right: {}", f.shown);
            assert!(f.shown.contains("client_secret"), "the key stays readable: {}", f.shown);
        }
        // The lines after the secret's value are shown as they are.
        let f = SourceFile::new(Path::new("t.yaml"), "c:\n  client_secret: >-\n    s3cr3t\n  client_id: x\n".into())
            .masking(&["client_secret"]);
        assert!(f.shown.ends_with("  client_id: x\n"), "{}", f.shown);
    }

    #[test]
    fn error_at_clamps_out_of_range_spans() {
        let f = SourceFile::new(Path::new("x.yaml"), "a: 1\n".into());
        let e = f.error_at(Span { line: 9, column: 9, offset: 999, len: 5 }, "boom");
        assert_eq!(e.location, "x.yaml:9:9");
        let _ = render(&e, false);
    }
}
