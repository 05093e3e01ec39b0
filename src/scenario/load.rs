//! Finding, parsing and validating scenario files. Every problem is collected (so `validate`
//! reports them all at once) and located at file:line:column.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde_saphyr::Spanned;

use super::interpolate::interpolate;
use super::model::{CaseDef, Expect, FileKindProbe, ResourceAction, StepDef, SuiteFile, TokenAction};
use super::{Action, Case, Expectation, Named, ResourceSpec, Step, Suite, TokenSpec};
use crate::checks::{self, Severity};
use crate::diagnostics::{LocatedError, SourceFile, Span, did_you_mean};

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LoadError {
    #[error("cannot read `{path}`: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("no scenario files (*.yaml, *.yml) under `{0}`")]
    NoScenarios(PathBuf),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Located(Box<LocatedError>),
}

impl From<LocatedError> for LoadError {
    fn from(e: LocatedError) -> Self {
        LoadError::Located(Box::new(e))
    }
}

/// What a file in a scenario folder turned out to be.
#[derive(Debug)]
pub enum Loaded {
    Suite(Box<Suite>),
    /// A load profile: recognised, left to `oauth-harness load`.
    LoadProfile(PathBuf),
}

/// Scenario files under `paths`: files as given, folders recursively, each folder sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| LoadError::Unreadable { path: path.clone(), reason: e.to_string() })?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                return Err(LoadError::NoScenarios(path.clone()));
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let unreadable = |e: std::io::Error| LoadError::Unreadable { path: dir.to_path_buf(), reason: e.to_string() };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(unreadable)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, out)?;
        } else if matches!(entry.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(entry);
        }
    }
    Ok(())
}

/// Loads every file under `paths`; returns what loaded, or every problem found.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Loaded>, Vec<LoadError>> {
    let files = collect_files(paths).map_err(|e| vec![e])?;
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let mut suite_names: HashSet<String> = HashSet::new();
    for path in files {
        let source = match SourceFile::read(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(LoadError::Unreadable { path, reason: e.to_string() });
                continue;
            }
        };
        match parse_file(&source) {
            Ok(Loaded::Suite(suite)) => {
                if !suite_names.insert(suite.name.clone()) {
                    errors.push(
                        source
                            .error_at(
                                Span { line: 1, column: 1, offset: 0, len: 1 },
                                format!("suite name `{}` is used by another file", suite.name),
                            )
                            .with_help("suite names must be unique: they name JUnit testsuites")
                            .into(),
                    );
                }
                loaded.push(Loaded::Suite(suite));
            }
            Ok(other) => loaded.push(other),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if errors.is_empty() { Ok(loaded) } else { Err(errors) }
}

fn parse_file(source: &SourceFile) -> Result<Loaded, Vec<LoadError>> {
    // A load profile is recognised by its top-level `load:` key; anything else must be a suite.
    if let Ok(probe) = serde_saphyr::from_str::<FileKindProbe>(&source.text) {
        if probe.load.is_some() {
            return Ok(Loaded::LoadProfile(source.path.clone()));
        }
    }
    parse_suite(source).map(|s| Loaded::Suite(Box::new(s)))
}

/// Turns a serde-saphyr error into a located error, with "did you mean" for unknown keys.
pub fn yaml_error(source: &SourceFile, err: &serde_saphyr::Error) -> LocatedError {
    let plain = err.without_snippet().to_string();
    // serde-saphyr prefixes "error: line L column C: "; the location is shown separately.
    let message = plain
        .strip_prefix("error: ")
        .unwrap_or(&plain)
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map(|(_, msg)| msg.to_string())
        .unwrap_or_else(|| plain.clone());
    // …and sometimes suffixes " at line L, column C" too.
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => message[..i].to_string(),
        _ => message,
    };
    let span = err.location().map(|l| Span::from_location(&l)).unwrap_or_default();
    let mut located = source.error_at(span, message.clone());
    if let Some(hint) = unknown_field_hint(&message) {
        located = located.with_label("unknown key").with_help(hint);
    }
    located
}

/// serde's "unknown field `x`, expected one of `a`, `b`" → "did you mean `a`?" or the list.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected
        .split(['`', ',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty() && !matches!(*w, "expected" | "one" | "of" | "or"))
        .collect();
    Some(match did_you_mean(field, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("valid keys here: {}", candidates.join(", ")),
    })
}

/// Parses and validates one suite file.
pub fn parse_suite(source: &SourceFile) -> Result<Suite, Vec<LoadError>> {
    let file: SuiteFile =
        serde_saphyr::from_str(&source.text).map_err(|e| vec![LoadError::from(yaml_error(source, &e))])?;
    let mut v = Validator { source, errors: Vec::new() };
    let suite = v.suite(file);
    if v.errors.is_empty() { Ok(suite) } else { Err(v.errors.into_iter().map(LoadError::from).collect()) }
}

struct Validator<'a> {
    source: &'a SourceFile,
    errors: Vec<LocatedError>,
}

impl Validator<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Span {
        Span::from_location(&spanned.referenced)
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> &mut LocatedError {
        self.errors.push(self.source.error_at(span, message));
        self.errors.last_mut().unwrap_or_else(|| unreachable!())
    }

    /// Interpolates `${env:…}` in a scenario string, reporting a failure where it was written.
    fn text(&mut self, value: &Spanned<String>) -> String {
        let base = self.source.path.parent().unwrap_or(Path::new("."));
        match interpolate(&value.value, base) {
            Ok(s) => s,
            Err(e) => {
                let span = self.at(value);
                self.error(span, e.to_string());
                String::new()
            }
        }
    }

    fn named(&self, value: &Option<Spanned<String>>) -> Option<Named> {
        value.as_ref().map(|v| Named { name: v.value.clone(), span: self.at(v) })
    }

    fn suite(&mut self, file: SuiteFile) -> Suite {
        let mut required = Vec::new();
        for req in &file.require {
            let span = self.at(&req.check);
            match checks::find(&req.check.value) {
                None => self.unknown_check(span, &req.check.value),
                Some(c) if c.severity == Severity::Must => {
                    let e = self.error(span, format!("`{}` is already a MUST check", c.id));
                    e.help = Some("`require` promotes SHOULD checks only".into());
                }
                Some(c) => required.push((c.id.to_string(), req.because.clone())),
            }
        }
        let mut ids = HashSet::new();
        let mut cases = Vec::new();
        for def in file.cases {
            let span = self.at(&def.id);
            if !is_valid_id(&def.id.value) {
                let e = self.error(span, format!("case id `{}` is not a stable id", def.id.value));
                e.help =
                    Some("use lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit".into());
            } else if !ids.insert(def.id.value.clone()) {
                self.error(span, format!("case id `{}` is used twice in this suite", def.id.value));
            }
            cases.push(self.case(def));
        }
        if cases.is_empty() {
            self.error(Span { line: 1, column: 1, offset: 0, len: 1 }, "the suite has no cases");
        }
        let system = match &file.system {
            None => "identity-server".to_string(),
            Some(s) if crate::mock::SYSTEMS.contains(&s.value.as_str()) => s.value.clone(),
            Some(s) => {
                let span = self.at(s);
                let e = self.error(span, format!("unknown system `{}`", s.value));
                e.help = Some(format!("systems: {}", crate::mock::SYSTEMS.join(", ")));
                s.value.clone()
            }
        };
        Suite {
            name: file.suite,
            system,
            title: file.title,
            spec: file.spec,
            source: self.source.clone(),
            client: self.named(&file.client),
            required,
            cases,
        }
    }

    fn case(&mut self, def: CaseDef) -> Case {
        let span = self.at(&def.id);
        let short = StepDef {
            token: def.token,
            resource: def.resource,
            discovery: def.discovery,
            introspect: def.introspect,
            revoke: def.revoke,
            wait: def.wait,
            ciba: def.ciba,
            poll: def.poll,
            approve: def.approve,
            expect: def.expect,
        };
        let has_short = action_count(&short) > 0;
        let mut steps = Vec::new();
        match (has_short, def.steps) {
            (true, Some(_)) => {
                let e = self.error(span, format!("case `{}` has both an action and `steps`", def.id.value));
                e.help = Some("write one action (token/resource/discovery) with `expect`, or a `steps` list".into());
            }
            (false, None) => {
                let e = self.error(span, format!("case `{}` does nothing", def.id.value));
                e.help = Some(
                    "add an action (`token`, `resource`, `discovery`, `introspect`, `revoke`, `wait`) or `steps`"
                        .into(),
                );
            }
            (false, Some(list)) if list.is_empty() => {
                self.error(span, format!("case `{}` has an empty `steps` list", def.id.value));
            }
            (true, None) => steps.extend(self.step(short, span)),
            (false, Some(list)) => {
                if short.expect.is_some() {
                    let e = self.error(span, "`expect` belongs inside each step when a case has `steps`");
                    e.help = Some("move `expect` under the step it is about".into());
                }
                for step in list {
                    steps.extend(self.step(step, span));
                }
            }
        }
        Case {
            id: def.id.value.clone(),
            title: def.title.unwrap_or_else(|| def.id.value.clone()),
            span,
            advertised: def.when.map(|w| w.advertised.into_iter().collect()).unwrap_or_default(),
            client: self.named(&def.client),
            steps,
        }
    }

    fn step(&mut self, def: StepDef, case_span: Span) -> Option<Step> {
        let count =
            [def.token.is_some(), def.resource.is_some(), def.discovery.is_some()].iter().filter(|b| **b).count();
        if count > 1 {
            let e = self.error(case_span, "a step has more than one action");
            e.help = Some("split token/resource/discovery into separate steps".into());
            return None;
        }
        let action = if let Some(t) = def.token {
            Action::Token(Box::new(self.token(t)))
        } else if let Some(r) = def.resource {
            Action::Resource(self.resource(r))
        } else if let Some(d) = def.discovery {
            Action::Discovery(super::DiscoverySpec { document: d.document, accept: d.accept })
        } else if let Some(i) = def.introspect {
            Action::Introspect(super::IntrospectSpec {
                client: self.named(&i.client),
                auth: i.auth,
                wrong_secret: i.secret.is_some(),
                token: i.token.unwrap_or(super::TokenRef::Last),
                token_type_hint: i.token_type_hint,
            })
        } else if let Some(r) = def.revoke {
            Action::Revoke(super::RevokeSpec {
                token: r.token.unwrap_or(super::TokenRef::Last),
                token_type_hint: r.token_type_hint,
            })
        } else if let Some(c) = def.ciba {
            Action::Ciba(super::CibaSpec {
                client: self.named(&c.client),
                user: self.named(&c.user),
                channel: c.channel.unwrap_or_else(|| "CARD".into()),
                binding_message: c.binding_message.unwrap_or_else(|| "42".into()),
                acr_values: c.acr_values.unwrap_or_else(|| "eidas1".into()),
                scope: c.scope.unwrap_or_else(|| "openid scope_all".into()),
                requested_expiry: c.requested_expiry,
                two_hints: c.two_hints,
                without_certificate: c.certificate.is_some(),
                approve_with_hook: c.approve.is_some(),
            })
        } else if let Some(p) = def.poll {
            Action::Poll(super::PollSpec {
                client: self.named(&p.client),
                too_fast: p.pace == Some(super::model::PollPace::TooFast),
                once: p.once,
            })
        } else if def.approve.is_some() {
            Action::Approve
        } else if let Some(w) = def.wait {
            let _ = w.until;
            Action::Wait(super::WaitSpec {
                skew: self.duration(w.skew.as_ref(), std::time::Duration::from_secs(1)),
                max: self.duration(w.max.as_ref(), std::time::Duration::from_secs(60)),
            })
        } else {
            self.error(case_span, "a step has no action (token, resource, discovery, introspect, revoke or wait)");
            return None;
        };
        let expect = self.expect(def.expect.unwrap_or_default());
        Some(Step { action, expect })
    }

    fn duration(&mut self, value: Option<&Spanned<String>>, default: std::time::Duration) -> std::time::Duration {
        let Some(v) = value else { return default };
        humantime::parse_duration(&v.value).unwrap_or_else(|e| {
            let span = self.at(v);
            let err = self.error(span, format!("`{}` is not a duration: {e}", v.value));
            err.help = Some("write it like `2s` or `1500ms`".into());
            default
        })
    }

    fn token(&mut self, t: TokenAction) -> TokenSpec {
        TokenSpec {
            client: self.named(&t.client),
            grant: t.grant.as_ref().map(|g| self.text(g)),
            auth: t.auth,
            scope: t.scope.as_ref().map(|s| self.text(s)),
            omit: t.omit,
            wrong_secret: t.secret.is_some(),
            client_id: t.client_id.as_ref().map(|c| self.text(c)),
            method: t.method,
            params: t.params.iter().map(|(k, v)| (k.clone(), self.text(v))).collect(),
            assertion: t.assertion.map(assertion_spec).unwrap_or_default(),
        }
    }

    fn resource(&mut self, r: ResourceAction) -> ResourceSpec {
        let path = r.path.as_ref().map(|p| {
            let text = self.text(p);
            if !text.starts_with('/') {
                let span = self.at(p);
                let e = self.error(span, format!("resource path `{text}` must start with `/`"));
                e.help = Some("paths are resolved against the target's resource URL".into());
            }
            text
        });
        ResourceSpec { path, bearer: r.bearer }
    }

    fn expect(&mut self, e: Expect) -> Expectation {
        let mut checks: Vec<&'static checks::CheckDef> = Vec::new();
        for name in &e.checks {
            match checks::resolve(&name.value) {
                Some(list) => {
                    for c in list {
                        if !checks.iter().any(|k| k.id == c.id) {
                            checks.push(c);
                        }
                    }
                }
                None => {
                    let span = self.at(name);
                    self.unknown_check(span, &name.value);
                }
            }
        }
        Expectation { status: e.status.map(|s| s.value), error: e.error.as_ref().map(|s| self.text(s)), checks }
    }

    fn unknown_check(&mut self, span: Span, name: &str) {
        let known = checks::known_names();
        let help = match did_you_mean(name, known.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? (`oauth-harness checks` lists them all)"),
            None => "`oauth-harness checks` lists every check id and bundle".to_string(),
        };
        let e = self.error(span, format!("unknown check or bundle `{name}`"));
        e.help = Some(help);
    }
}

fn action_count(step: &StepDef) -> usize {
    [
        step.token.is_some(),
        step.resource.is_some(),
        step.discovery.is_some(),
        step.introspect.is_some(),
        step.revoke.is_some(),
        step.wait.is_some(),
        step.ciba.is_some(),
        step.poll.is_some(),
        step.approve.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

fn assertion_spec(a: super::model::AssertionAction) -> super::AssertionSpec {
    use crate::auth::assertion::Mutation;
    let mut claims = a.claims;
    for name in a.drop {
        claims.insert(name, serde_json::Value::Null);
    }
    super::AssertionSpec {
        mutation: Mutation {
            header: a.header,
            claims,
            exp_in: a.exp_in,
            nbf_in: a.nbf_in,
            aud_array: a.aud_array,
            alg: a.alg,
            hs256_with_public_key: a.hs256_with_public_key,
            bad_signature: a.bad_signature,
        },
        replay: a.replay.is_some(),
        unregistered_key: a.sign_with.is_some() || a.jku.is_some(),
        serve_jku: a.jku.is_some(),
    }
}

fn is_valid_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Suite, Vec<LoadError>> {
        parse_suite(&SourceFile::new(Path::new("s.yaml"), text.to_string()))
    }

    fn first_error(text: &str) -> LocatedError {
        match parse(text).unwrap_err().remove(0) {
            LoadError::Located(e) => *e,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn short_form_case_becomes_one_step() {
        let s = parse("suite: x\ncases:\n  - id: a\n    token: { scope: implant }\n    expect: { status: 200, checks: [token-response] }\n").unwrap();
        assert_eq!(s.cases[0].steps.len(), 1);
        assert_eq!(s.cases[0].steps[0].expect.checks.len(), checks::resolve("token-response").unwrap().len());
    }

    #[test]
    fn unknown_key_is_located_with_a_suggestion() {
        let e = first_error("suite: x\ncases:\n  - id: a\n    tokn: {}\n");
        assert_eq!(e.location, "s.yaml:4:5");
        assert_eq!(e.help.as_deref(), Some("did you mean `token`?"));
    }

    #[test]
    fn unknown_check_is_located_with_a_suggestion() {
        let e = first_error("suite: x\ncases:\n  - id: a\n    token: {}\n    expect: { checks: [token-respons] }\n");
        assert_eq!(e.location, "s.yaml:5:24");
        assert!(e.help.unwrap().contains("`token-response`"));
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = parse("suite: x\ncases:\n  - id: A\n    token: {}\n  - id: b\n  - id: c\n    discovery: { document: openid-configuration }\n    expect: { checks: [nope] }\n").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn require_accepts_should_checks_only() {
        let e = first_error(
            "suite: x\nrequire:\n  - { check: rfc6749.5.1.pragma, because: x }\ncases:\n  - id: a\n    token: {}\n",
        );
        assert!(e.message.contains("already a MUST"));
    }

    #[test]
    fn missing_env_var_is_named() {
        let e =
            first_error("suite: x\ncases:\n  - id: a\n    token: { scope: \"${env:OAUTH_HARNESS_SURELY_UNSET}\" }\n");
        assert!(e.message.contains("OAUTH_HARNESS_SURELY_UNSET"), "{}", e.message);
        assert_eq!(e.location, "s.yaml:4:21");
    }
}
