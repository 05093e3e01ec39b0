//! Where a command's text goes: stdout for results, stderr for diagnostics and notes. Everything
//! is scrubbed of the secrets the run has registered; colour only for a terminal that wants it;
//! a closed stdout (`… | head`) ends the output quietly, never in a panic.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use miette::Diagnostic;

use crate::exit::Failure;
use crate::support::diagnostics::render;
use crate::support::secret::Redactor;

pub struct Output {
    pub color: bool,
    /// Every secret of the run: registered by the command as it learns them.
    pub redactor: Redactor,
    /// Set once stdout is closed: later results are dropped, the command goes on.
    closed: AtomicBool,
}

impl Output {
    pub fn detect(no_color: bool) -> Self {
        let wanted = !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            color: wanted && std::io::stdout().is_terminal(),
            redactor: Redactor::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Writes results to stdout, scrubbed.
    pub fn print(&self, text: &str) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let written = stdout.write_all(self.redactor.scrub(text).as_bytes()).and_then(|_| stdout.flush());
        if written.is_err() {
            // A closed pipe (the reader is gone) is not an error of ours.
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    pub fn println(&self, text: &str) {
        self.print(&format!("{text}\n"));
    }

    /// A note on stderr, scrubbed.
    pub fn note(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{}", self.redactor.scrub(text));
    }

    /// A diagnostic on stderr, scrubbed.
    pub fn error(&self, diagnostic: &dyn Diagnostic) {
        let color = self.color && std::io::stderr().is_terminal();
        let text = self.redactor.scrub(render(diagnostic, color).trim_end());
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    /// A command's failure: input problems one by one, with their count.
    pub fn failure(&self, failure: &Failure) {
        match failure {
            Failure::Input(errors) => {
                for e in &errors.0 {
                    self.error(e);
                }
                self.error(&crate::exit::Usage::new(format!(
                    "{} found",
                    crate::support::text::count(errors.0.len(), "problem")
                )));
            }
            Failure::Run(crate::run::RunError::Preflight(errors)) => {
                for e in errors {
                    self.error(e);
                }
                self.error(&crate::exit::Usage::new(format!(
                    "{} between the scenarios and the target",
                    crate::support::text::count(errors.len(), "problem")
                )));
            }
            other => self.error(other),
        }
    }
}
