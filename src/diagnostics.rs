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

impl SourceFile {
    pub fn read(path: &Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::new(path, text))
    }

    pub fn new(path: &Path, text: String) -> Self {
        Self { path: path.to_path_buf(), text: Arc::new(text) }
    }

    pub fn error_at(&self, span: Span, message: impl Into<String>) -> LocatedError {
        // Clamp the span to the text: a location from a parser must never make us panic.
        let offset = span.offset.min(self.text.len());
        let len = span.len.min(self.text.len() - offset);
        LocatedError {
            message: message.into(),
            label: String::from("here"),
            help: None,
            location: format!("{}:{}:{}", self.path.display(), span.line, span.column),
            src: NamedSource::new(self.path.display().to_string(), self.text.clone()),
            span: (offset, len).into(),
        }
    }
}

/// One problem in one input file, with its location.
#[derive(Debug, thiserror::Error, Diagnostic)]
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
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
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
    fn error_at_clamps_out_of_range_spans() {
        let f = SourceFile::new(Path::new("x.yaml"), "a: 1\n".into());
        let e = f.error_at(Span { line: 9, column: 9, offset: 999, len: 5 }, "boom");
        assert_eq!(e.location, "x.yaml:9:9");
        let _ = render(&e, false);
    }
}
