//! `${env:VAR}` and `${file:path}` in scenario and target strings.
//!
//! Secrets belong in the environment or in files outside the repository, never in YAML; this is
//! how a target file names them. `$${` writes a literal `${`. `${file:…}` reads regular files of
//! at most [`MAX_FILE_BYTES`] (a device or a FIFO is refused before it is opened).

use std::path::Path;

use crate::support::files;

/// The largest file `${file:PATH}` reads: a secret, a token, a short PEM — not a data set.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InterpolationError {
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    #[error("${{file:…}}: {reason}")]
    File { reason: String },
    #[error("unknown interpolation `${{{0}:…}}`; use `${{env:VAR}}` or `${{file:PATH}}`")]
    UnknownKind(String),
    #[error("unterminated `${{`: close it with `}}`")]
    Unterminated,
}

/// Expands every `${kind:arg}` in `text`. Files are read relative to `base_dir` (the directory
/// of the YAML file), and their trailing newline is dropped, as for a secret written by `echo`.
pub fn interpolate(text: &str, base_dir: &Path) -> Result<String, InterpolationError> {
    interpolate_with(text, base_dir, &|name| std::env::var(name).ok())
}

pub fn interpolate_with(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${` is an escaped literal `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(InterpolationError::Unterminated)?;
        let expr = &after[..end];
        let (kind, arg) = expr.split_once(':').unwrap_or((expr, ""));
        match kind.trim() {
            "env" => {
                let name = arg.trim();
                out.push_str(&env(name).ok_or_else(|| InterpolationError::MissingEnv(name.into()))?);
            }
            "file" => {
                let path = base_dir.join(arg.trim());
                let content = files::read_text(&path, MAX_FILE_BYTES)
                    .map_err(|e| InterpolationError::File { reason: e.to_string() })?;
                out.push_str(content.strip_suffix('\n').unwrap_or(&content));
            }
            other => return Err(InterpolationError::UnknownKind(other.into())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SECRET").then(|| "s3cr:t".to_string())
    }

    #[test]
    fn expands_env_and_keeps_the_rest() {
        let out = interpolate_with("a-${env:SECRET}-b", Path::new("."), &env).unwrap();
        assert_eq!(out, "a-s3cr:t-b");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = interpolate_with("${env:NOPE}", Path::new("."), &env).unwrap_err();
        assert_eq!(err, InterpolationError::MissingEnv("NOPE".into()));
    }

    #[test]
    fn escaped_and_unterminated() {
        assert_eq!(interpolate_with("$${env:X}", Path::new("."), &env).unwrap(), "${env:X}");
        assert_eq!(interpolate_with("${env:X", Path::new("."), &env).unwrap_err(), InterpolationError::Unterminated);
        assert!(matches!(
            interpolate_with("${vault:x}", Path::new("."), &env),
            Err(InterpolationError::UnknownKind(_))
        ));
    }

    #[test]
    fn refuses_devices_fifos_and_large_files() {
        let err = interpolate_with("${file:/dev/zero}", Path::new("."), &env).unwrap_err();
        assert!(err.to_string().contains("not a regular file (a device)"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let err = interpolate_with("${file:big}", dir.path(), &env).unwrap_err();
        assert!(err.to_string().contains("more than the 1048576 bytes"), "{err}");
    }

    #[test]
    fn reads_files_relative_to_the_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.txt"), "from-file\n").unwrap();
        assert_eq!(interpolate_with("${file:s.txt}", dir.path(), &env).unwrap(), "from-file");
    }
}
