//! Scenario files: finding them, telling suites from load profiles, parsing, and validating a
//! suite into the model. A case or step is read key by key against the action table
//! ([`crate::model::ACTIONS`]): a step names exactly one action.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::validator::{Validator, at};
use super::yaml::{self, Shapes};
use super::{InputError, InputErrors, read_source};
use crate::model::action::{ACTIONS, action_names};
use crate::model::{
    Action, ActionKind, AuthChoice, AuthMethod, Case, DEFAULT_SYSTEM, SYSTEMS, ScopeRole, ScopeSpec, Step, Suite,
};
use crate::model::{
    AlgPick, ApproveSpec, AssertionSpec, BearerChoice, CibaAudience, CibaSpec, DiscoveryDocument, DiscoverySpec,
    Expectation, FormParam, HttpMethod, IntrospectSpec, KeySet, MAX_MINT, MAX_ROTATION_MAX_AGE, MintSpec, Mutation,
    PollSpec, ResourceCertificate, ResourceSpec, RevokeSpec, RotateKeySpec, StatusSet, SubjectTokenType, TlsSpec,
    TokenExchangeSpec, TokenRef, TokenSpec, WaitSpec,
};
use crate::support::diagnostics::{SourceFile, Span};

/// At most this many scenario files under the paths given, and folders this deep.
const MAX_FILES: usize = 10_000;
const MAX_FOLDER_DEPTH: usize = 16;
/// Waits are bounded: a `wait` step may not ask for more than this.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// What a YAML file in a scenario folder is, by its first top-level key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Suite,
    LoadProfile,
    ClientSuite,
}

/// What a file in a scenario folder turned out to be.
#[derive(Debug)]
pub enum Input {
    Suite(Box<Suite>),
    /// A load profile: recognised, left to `oauth-harness load`.
    LoadProfile(PathBuf),
    /// A client suite: recognised, left to `oauth-harness certify`.
    ClientSuite(PathBuf),
}

/// Tells a load profile (top-level `load:`) from a suite by the text alone, so that a profile
/// with a bad value is still recognised as a profile and its own errors are reported.
pub fn file_kind(text: &str) -> FileKind {
    for line in text.lines() {
        let key = line.split_once(':').map(|(k, _)| k).unwrap_or("");
        if line.starts_with([' ', '\t', '#', '-']) || key.is_empty() {
            continue;
        }
        match key.trim() {
            "load" => return FileKind::LoadProfile,
            "client_suite" => return FileKind::ClientSuite,
            _ => {}
        }
    }
    FileKind::Suite
}

/// Scenario files under `paths`: files as given, folders recursively, each folder sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            InputError::File(crate::support::files::FileError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, &mut files, 0)?;
            if files.len() == before {
                return Err(InputError::NoScenarios(path.clone()));
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), InputError> {
    let unreadable = |reason: String| {
        InputError::File(crate::support::files::FileError::Unreadable { path: dir.display().to_string(), reason })
    };
    if depth > MAX_FOLDER_DEPTH {
        return Err(unreadable(format!("folders nested deeper than {MAX_FOLDER_DEPTH}")));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, out, depth + 1)?;
        } else if matches!(entry.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(entry);
            if out.len() > MAX_FILES {
                return Err(unreadable(format!("more than {MAX_FILES} scenario files")));
            }
        }
    }
    Ok(())
}

/// Reads every file under `paths`; returns what was found, or every problem.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, InputErrors> {
    let (found, errors) = read_inputs_all(paths);
    if errors.is_empty() { Ok(found) } else { Err(InputErrors(errors)) }
}

/// Reads every file under `paths`: what was found — suites with problems included, as far as
/// they could be read, so later checks can report their own problems too — and every problem.
pub fn read_inputs_all(paths: &[PathBuf]) -> (Vec<Input>, Vec<InputError>) {
    let files = match collect_files(paths) {
        Ok(f) => f,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut suite_names: HashSet<String> = HashSet::new();
    for path in files {
        let source = match read_source(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match file_kind(&source.text) {
            FileKind::LoadProfile => {
                found.push(Input::LoadProfile(path));
                continue;
            }
            FileKind::ClientSuite => {
                found.push(Input::ClientSuite(path));
                continue;
            }
            FileKind::Suite => {}
        }
        let (suite, mut problems) = parse_suite_partial(&source);
        errors.append(&mut problems);
        if let Some(suite) = suite {
            {
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
                found.push(Input::Suite(Box::new(suite)));
            }
        }
    }
    (found, errors)
}

const SHAPES: Shapes = &[
    ("cases", "a list of cases, each with an `id`"),
    ("steps", "a list of steps, each with one action"),
    ("require", "a list of `{ check: …, because: … }`"),
    ("checks", "a list of check ids or bundles, e.g. `[token-response]`"),
    ("status", "a status code or a list of them, e.g. `200` or `[400, 401]`"),
    ("omit", "a list of parameters to leave out, e.g. `[scope]`"),
    ("drop", "a list of claim names, e.g. `[exp]`"),
    ("aud_array", "a list of audience URLs"),
    ("params", "a mapping of form parameters, e.g. `{ client_assertion_type: x }`"),
    ("advertised", "a mapping `metadata_field: value`"),
    ("scope", "a scope (`implant`), or scope roles (`{ roles: [second, default] }`)"),
    ("roles", "a list of scope roles: default, second, not-allowed, smart-v1, smart-v2, ciba, ciba-not-allowed"),
    ("registered", "a method, or a list of methods, e.g. `client_secret_post`"),
    ("not_registered", "a method, or a list of methods, e.g. `client_secret_post`"),
    ("requested_expiry", "a whole number of seconds"),
    ("exp_in", "a whole number of seconds (negative: in the past)"),
    ("nbf_in", "a whole number of seconds (negative: in the past)"),
    ("once", "`true` or `false`"),
    ("certificate_bound", "`true` or `false`"),
    ("two_hints", "`true` or `false`"),
];

/// Parses and validates one suite file.
pub fn parse_suite(source: &SourceFile) -> Result<Suite, InputErrors> {
    match parse_suite_partial(source) {
        (Some(suite), errors) if errors.is_empty() => Ok(suite),
        (_, errors) => Err(InputErrors(errors)),
    }
}

/// The suite as far as it could be read (none if the YAML itself is unreadable), and every
/// problem found in it.
pub fn parse_suite_partial(source: &SourceFile) -> (Option<Suite>, Vec<InputError>) {
    let file: SuiteFile = match yaml::parse(source, SHAPES) {
        Ok(f) => f,
        Err(e) => return (None, vec![InputError::from(e)]),
    };
    let mut v = Validator::new(source);
    let suite = suite(&mut v, file);
    let errors = v.finish(()).err().map(|e| e.0).unwrap_or_default();
    (Some(suite), errors)
}

// ---- The YAML as written -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    /// Stable suite name, used as the JUnit testsuite name.
    suite: String,
    title: Option<String>,
    /// The specification the suite certifies against (a URL), shown in reports.
    spec: Option<String>,
    /// Default client (a name from the target file) for every case.
    client: Option<Spanned<String>>,
    /// Which system the suite is for: picks the embedded mock it runs against.
    system: Option<Spanned<String>>,
    /// SHOULD-level checks this suite treats as MUST, each with the reason why.
    #[serde(default)]
    require: Vec<Requirement>,
    cases: Vec<RawCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    check: Spanned<String>,
    because: String,
}

/// The keys a case may have besides its action.
const CASE_KEYS: &[&str] = &["id", "title", "when", "client", "expect", "steps"];
/// The keys a step may have besides its action.
const STEP_KEYS: &[&str] = &["expect"];

/// Valid keys of a case (or a step): its own keys, then every action of the table.
fn valid_keys(own: &'static [&'static str]) -> &'static [&'static str] {
    static CASE: OnceLock<Vec<&'static str>> = OnceLock::new();
    static STEP: OnceLock<Vec<&'static str>> = OnceLock::new();
    let cell = if own.len() == CASE_KEYS.len() { &CASE } else { &STEP };
    cell.get_or_init(|| own.iter().copied().chain(action_names()).collect())
}

/// A case: its own keys, and its actions (the short form) or `steps`.
#[derive(Debug, Default)]
struct RawCase {
    id: Option<Spanned<String>>,
    title: Option<String>,
    when: Option<When>,
    client: Option<Spanned<String>>,
    steps: Option<Spanned<Vec<RawStep>>>,
    body: RawStep,
}

/// A step: the actions it names (exactly one is valid) and what it expects.
#[derive(Debug, Default)]
struct RawStep {
    actions: Vec<(Spanned<String>, RawAction)>,
    expect: Option<Expect>,
}

/// An action's parameters as written, one variant per row of the action table.
#[derive(Debug)]
enum RawAction {
    Token(TokenAction),
    Resource(ResourceAction),
    Discovery(DiscoveryAction),
    Introspect(IntrospectAction),
    Revoke(RevokeAction),
    Wait(WaitAction),
    Mint(MintAction),
    Ciba(CibaAction),
    Poll(PollAction),
    Approve(ApproveAction),
    TokenExchange(TokenExchangeAction),
    Tls(TlsAction),
    RotateKey(RotateKeyAction),
}

fn next_action<'de, A: MapAccess<'de>>(kind: ActionKind, map: &mut A) -> Result<RawAction, A::Error> {
    Ok(match kind {
        ActionKind::Token => RawAction::Token(map.next_value()?),
        ActionKind::Resource => RawAction::Resource(map.next_value()?),
        ActionKind::Discovery => RawAction::Discovery(map.next_value()?),
        ActionKind::Introspect => RawAction::Introspect(map.next_value()?),
        ActionKind::Revoke => RawAction::Revoke(map.next_value()?),
        ActionKind::Wait => RawAction::Wait(map.next_value()?),
        ActionKind::Mint => RawAction::Mint(map.next_value()?),
        ActionKind::Ciba => RawAction::Ciba(map.next_value()?),
        ActionKind::Poll => RawAction::Poll(map.next_value()?),
        ActionKind::Approve => RawAction::Approve(map.next_value()?),
        ActionKind::TokenExchange => RawAction::TokenExchange(map.next_value()?),
        ActionKind::Tls => RawAction::Tls(map.next_value()?),
        ActionKind::RotateKey => RawAction::RotateKey(map.next_value()?),
    })
}

impl<'de> Deserialize<'de> for RawCase {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CaseVisitor;
        impl<'de> Visitor<'de> for CaseVisitor {
            type Value = RawCase;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a case: `id`, `title`, one action with its `expect`, or `steps`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCase, A::Error> {
                let mut case = RawCase::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "id" => case.id = Some(map.next_value()?),
                        "title" => case.title = Some(map.next_value()?),
                        "when" => case.when = Some(map.next_value()?),
                        "client" => case.client = Some(map.next_value()?),
                        "steps" => case.steps = Some(map.next_value()?),
                        "expect" => case.body.expect = Some(map.next_value()?),
                        name => match ActionKind::from_name(name) {
                            Some(kind) => {
                                let action = next_action(kind, &mut map)?;
                                case.body.actions.push((key, action));
                            }
                            None => return Err(de::Error::unknown_field(name, valid_keys(CASE_KEYS))),
                        },
                    }
                }
                if case.id.is_none() {
                    return Err(de::Error::missing_field("id"));
                }
                Ok(case)
            }
        }
        d.deserialize_map(CaseVisitor)
    }
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> Visitor<'de> for StepVisitor {
            type Value = RawStep;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a step: one action and its `expect`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStep, A::Error> {
                let mut step = RawStep::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "expect" => step.expect = Some(map.next_value()?),
                        name => match ActionKind::from_name(name) {
                            Some(kind) => {
                                let action = next_action(kind, &mut map)?;
                                step.actions.push((key, action));
                            }
                            None => return Err(de::Error::unknown_field(name, valid_keys(STEP_KEYS))),
                        },
                    }
                }
                Ok(step)
            }
        }
        d.deserialize_map(StepVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct When {
    /// `metadata_field: value` — the discovery document's field (a string or an array) must
    /// contain the value.
    #[serde(default)]
    advertised: BTreeMap<String, String>,
    /// The case's client is registered for this method (or these), as the target says.
    registered: Option<Spanned<Names>>,
    /// …is not registered for this method (or these).
    not_registered: Option<Spanned<Names>>,
    /// `true`: the case's client registered for certificate-bound tokens (RFC 8705 §3.4).
    #[serde(default)]
    certificate_bound: bool,
}

/// One name or a list of names (`registered: client_secret_post` or `[a, b]`). A hand-written
/// visitor rather than `#[serde(untagged)]`, which would buffer the value and lose its location.
#[derive(Debug, Default)]
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(vec![s.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(n) = seq.next_element::<String>()? {
                    names.push(n);
                }
                Ok(Names(names))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scope as written (`scope: implant`), or by role (`scope: { roles: [second, default] }`).
#[derive(Debug)]
enum RawScope {
    Literal(String),
    Roles(Vec<String>),
}

impl<'de> Deserialize<'de> for RawScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawScope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a scope, or `{ roles: [...] }`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawScope, E> {
                Ok(RawScope::Literal(s.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawScope, A::Error> {
                let mut roles = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "roles" {
                        return Err(serde::de::Error::unknown_field(&key, &["roles"]));
                    }
                    roles = Some(map.next_value::<Names>()?.0);
                }
                roles.map(RawScope::Roles).ok_or_else(|| serde::de::Error::missing_field("roles"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A token request, written as the good request plus deliberate deviations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenAction {
    client: Option<Spanned<String>>,
    /// `grant_type`; `client_credentials` unless said otherwise.
    grant: Option<Spanned<String>>,
    /// How the client authenticates; the client's configured method unless said otherwise.
    auth: Option<AuthChoice>,
    /// Requested scope; the client's default scope unless said otherwise.
    scope: Option<Spanned<RawScope>>,
    /// Parameters to leave out of the request (e.g. `grant_type`, `scope`).
    #[serde(default)]
    omit: Vec<FormParam>,
    /// `wrong`: send a random secret instead of the registered one.
    secret: Option<SecretMutation>,
    /// Send this client_id instead of the registered one (an unknown client).
    client_id: Option<Spanned<String>>,
    /// `POST` unless said otherwise (RFC 6749 §3.2 checks use `GET`).
    method: Option<HttpMethod>,
    /// Extra form parameters; one named like a parameter the request has replaces it.
    #[serde(default)]
    params: BTreeMap<String, Spanned<String>>,
    /// RFC 8707 `resource`: `target` (the target's resource) or `unknown`.
    resource: Option<crate::model::ResourceIndicator>,
    /// RFC 9449: a DPoP proof, good or one of the kinds a server must refuse.
    dpop: Option<crate::model::DpopProof>,
    /// Deviations of the private_key_jwt client assertion.
    assertion: Option<AssertionAction>,
}

/// How the client assertion deviates from the good one (RFC 7523 §3 negative cases).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertionAction {
    #[serde(default)]
    claims: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    header: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    drop: Vec<String>,
    exp_in: Option<i64>,
    nbf_in: Option<i64>,
    aud_array: Option<Vec<String>>,
    /// `none`, a JWS algorithm, or `unadvertised` / `other-advertised` (picked from the server's
    /// metadata when the case runs).
    alg: Option<String>,
    #[serde(default)]
    hs256_with_public_key: bool,
    #[serde(default)]
    bad_signature: bool,
    replay: Option<Replay>,
    sign_with: Option<SignWith>,
    jku: Option<JkuChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Replay {
    Previous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SignWith {
    Unregistered,
    /// The key a `rotate_key: { publish: new-only }` step took out of the client's JWKS.
    Retired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JkuChoice {
    Serve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SecretMutation {
    Wrong,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceAction {
    /// A path on the target's resource URL origin.
    path: Option<Spanned<String>>,
    bearer: Option<BearerChoice>,
    /// `none` or `other`: the certificate the call presents (the token's client's by default).
    certificate: Option<ResourceCertificate>,
    /// RFC 9449 §7: `good`, `no-ath`, `other-key` or `as-bearer` for a DPoP-bound token.
    dpop: Option<crate::model::ResourceDpop>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectAction {
    client: Option<Spanned<String>>,
    auth: Option<AuthChoice>,
    secret: Option<SecretMutation>,
    token: Option<TokenRef>,
    token_type_hint: Option<String>,
    /// `jwt`: ask for the answer as a signed JWT (RFC 9701); JSON otherwise.
    response: Option<IntrospectionResponse>,
    /// SMART 2.2: authenticate with a bearer token the caller gets first, not its credentials.
    bearer_token: Option<Spanned<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum IntrospectionResponse {
    Json,
    Jwt,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeAction {
    token: Option<TokenRef>,
    token_type_hint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitAction {
    #[allow(dead_code)] // `expiry` is the only value; the key says what is waited for
    until: WaitUntil,
    skew: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WaitUntil {
    Expiry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CibaAction {
    client: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    channel: Option<Spanned<String>>,
    binding_message: Option<String>,
    acr_values: Option<String>,
    scope: Option<Spanned<RawScope>>,
    requested_expiry: Option<Spanned<i64>>,
    #[serde(default)]
    two_hints: bool,
    certificate: Option<CertificateChoice>,
    approve: Option<ApproveChoice>,
    /// private_key_jwt: the assertion's `aud` (issuer, token-endpoint, backchannel-endpoint).
    aud: Option<CibaAudience>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CertificateChoice {
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ApproveChoice {
    Hook,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveAction {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsAction {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateKeyAction {
    publish: KeySet,
    max_age: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenExchangeAction {
    client: Option<Spanned<String>>,
    subject_token_type: Option<SubjectTokenType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MintAction {
    client: Option<Spanned<String>>,
    count: Spanned<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollAction {
    client: Option<Spanned<String>>,
    pace: Option<PollPace>,
    #[serde(default)]
    once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PollPace {
    Honour,
    TooFast,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoveryAction {
    document: DiscoveryDocument,
    accept: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: Option<Spanned<RawStatus>>,
    error: Option<Spanned<String>>,
    checks: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawStatus {
    One(i64),
    Any(Vec<i64>),
}

// ---- Validation into the model ------------------------------------------------------------

fn suite(v: &mut Validator<'_>, file: SuiteFile) -> Suite {
    let required = file.require.iter().map(|r| (v.named(&Some(r.check.clone())), r.because.clone()));
    let required = required.filter_map(|(n, because)| n.map(|n| (n, because))).collect();
    let mut ids = HashSet::new();
    let mut cases = Vec::new();
    for def in file.cases {
        let Some(id) = def.id.clone() else { continue };
        if !is_valid_id(&id.value) {
            v.error_help(
                at(&id),
                format!("case id `{}` is not a stable id", id.value),
                "use lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            );
        } else if !ids.insert(id.value.clone()) {
            v.error(at(&id), format!("case id `{}` is used twice in this suite", id.value));
        }
        cases.push(case(v, def, id));
    }
    if cases.is_empty() {
        v.error(Span { line: 1, column: 1, offset: 0, len: 1 }, "the suite has no cases");
    }
    let system = match &file.system {
        None => DEFAULT_SYSTEM.to_string(),
        Some(s) => v.one_of(s, "system", SYSTEMS).unwrap_or(DEFAULT_SYSTEM).to_string(),
    };
    Suite {
        name: file.suite,
        system,
        title: file.title,
        spec: file.spec,
        source: v.source.clone(),
        client: v.named(&file.client),
        required,
        cases,
    }
}

fn case(v: &mut Validator<'_>, mut def: RawCase, id: Spanned<String>) -> Case {
    let span = at(&id);
    let has_short = !def.body.actions.is_empty();
    let mut steps = Vec::new();
    // Whether any step wrote an `expect` (one that failed validation is reported on its own).
    let mut written = false;
    match (has_short, def.steps) {
        (true, Some(_)) => v.error_help(
            span,
            format!("case `{}` has both an action and `steps`", id.value),
            "write one action with `expect`, or a `steps` list",
        ),
        (false, None) => {
            let names: Vec<&str> = action_names().collect();
            v.error_help(
                span,
                format!("case `{}` does nothing", id.value),
                format!("add an action ({}) or `steps`", names.join(", ")),
            );
        }
        (false, Some(list)) if list.value.is_empty() => {
            v.error(at(&list), format!("case `{}` has an empty `steps` list", id.value));
        }
        (true, None) => {
            written |= def.body.expect.is_some();
            steps.extend(step(v, def.body, span));
        }
        (false, Some(list)) => {
            if def.body.expect.is_some() {
                v.error_help(
                    span,
                    "`expect` belongs inside each step when a case has `steps`",
                    "move `expect` under the step it is about",
                );
            }
            for s in list.value {
                written |= s.expect.is_some();
                steps.extend(step(v, s, span));
            }
        }
    }
    // A verdict is earned: a case whose steps expect nothing could only pass unchecked.
    if !steps.is_empty() && !written {
        v.error_help(
            span,
            format!("case `{}` expects nothing, so it could only pass with nothing checked", id.value),
            "give the step whose answer matters an `expect: { checks: [...] }` (`oauth-harness checks` lists them)",
        );
    }
    Case {
        id: id.value.clone(),
        title: def.title.unwrap_or_else(|| id.value.clone()),
        span,
        advertised: def.when.as_ref().map(|w| w.advertised.clone().into_iter().collect()).unwrap_or_default(),
        registered: methods(v, def.when.as_mut().and_then(|w| w.registered.take())),
        not_registered: methods(v, def.when.as_mut().and_then(|w| w.not_registered.take())),
        certificate_bound: def.when.as_ref().is_some_and(|w| w.certificate_bound),
        client: v.named(&def.client),
        steps,
    }
}

fn step(v: &mut Validator<'_>, def: RawStep, case_span: Span) -> Option<Step> {
    let mut actions = def.actions.into_iter();
    let Some((key, first)) = actions.next() else {
        let names: Vec<&str> = action_names().collect();
        v.error_help(case_span, "a step has no action", format!("give it one of: {}", names.join(", ")));
        return None;
    };
    let extra: Vec<(Spanned<String>, RawAction)> = actions.collect();
    if let Some((second, _)) = extra.first() {
        let mut names = vec![format!("`{}`", key.value)];
        names.extend(extra.iter().map(|(k, _)| format!("`{}`", k.value)));
        v.error_help(
            at(second),
            format!("a step has more than one action: {}", names.join(" and ")),
            "a step does one thing: split them into separate steps (each with its own `expect`)",
        );
        return None;
    }
    let action = action(v, first);
    if def.expect.is_some() && !action.kind().is_judged() {
        let judged: Vec<&str> = ACTIONS.iter().filter(|a| a.kind.is_judged()).map(|a| a.name).collect();
        v.error_help(
            at(&key),
            format!("`{}` gets no answer to judge, so its `expect` would never be checked", key.value),
            format!("move `expect` to the step whose answer it is about ({})", judged.join(", ")),
        );
    }
    let expect = expect(v, def.expect);
    Some(Step { action, expect })
}

fn action(v: &mut Validator<'_>, raw: RawAction) -> Action {
    match raw {
        RawAction::Token(t) => Action::Token(Box::new(token(v, t))),
        RawAction::Resource(r) => Action::Resource(resource(v, r)),
        RawAction::Discovery(d) => Action::Discovery(DiscoverySpec { document: d.document, accept: d.accept }),
        RawAction::Introspect(i) => {
            let bearer_token = i.bearer_token.as_ref().is_some_and(|b| b.value);
            if let (true, Some(b)) =
                (i.auth.is_some() || i.secret.is_some(), i.bearer_token.as_ref().filter(|b| b.value))
            {
                v.error_help(
                    at(b),
                    "`bearer_token` replaces the caller's credentials: it takes no `auth` or `secret`",
                    "drop `auth`/`secret`, or `bearer_token`",
                );
            }
            Action::Introspect(IntrospectSpec {
                client: v.named(&i.client),
                auth: i.auth,
                wrong_secret: i.secret.is_some(),
                token: i.token.unwrap_or(TokenRef::Last),
                token_type_hint: i.token_type_hint,
                jwt: i.response == Some(IntrospectionResponse::Jwt),
                bearer_token,
            })
        }
        RawAction::Revoke(r) => {
            Action::Revoke(RevokeSpec { token: r.token.unwrap_or(TokenRef::Last), token_type_hint: r.token_type_hint })
        }
        RawAction::Wait(w) => Action::Wait(WaitSpec {
            skew: w.skew.as_ref().and_then(|s| v.duration(s, "skew", true, MAX_WAIT)).unwrap_or(Duration::from_secs(1)),
            max: w.max.as_ref().and_then(|m| v.duration(m, "max", false, MAX_WAIT)).unwrap_or(Duration::from_secs(60)),
        }),
        RawAction::Ciba(c) => Action::Ciba(ciba(v, c)),
        RawAction::Poll(p) => Action::Poll(PollSpec {
            client: v.named(&p.client),
            too_fast: p.pace == Some(PollPace::TooFast),
            once: p.once,
        }),
        RawAction::Approve(ApproveAction {}) => Action::Approve(ApproveSpec {}),
        RawAction::Tls(TlsAction {}) => Action::Tls(TlsSpec {}),
        RawAction::RotateKey(r) => Action::RotateKey(RotateKeySpec {
            publish: r.publish,
            max_age: r
                .max_age
                .as_ref()
                .and_then(|m| v.duration(m, "max_age", false, MAX_ROTATION_MAX_AGE))
                .unwrap_or(Duration::from_secs(1)),
        }),
        RawAction::TokenExchange(t) => Action::TokenExchange(TokenExchangeSpec {
            client: v.named(&t.client),
            subject_token_type: t.subject_token_type.unwrap_or_default(),
        }),
        RawAction::Mint(m) => Action::Mint(MintSpec {
            client: v.named(&m.client),
            count: v.number(&m.count, "count", 1, i64::from(MAX_MINT)).unwrap_or(1) as u32,
        }),
    }
}

fn ciba(v: &mut Validator<'_>, c: CibaAction) -> CibaSpec {
    let channel = match &c.channel {
        Some(ch) => v.one_of(ch, "channel", &["CARD", "MOBILE"]).unwrap_or("CARD").to_string(),
        None => "CARD".into(),
    };
    // CIBA §7.1.1: a positive number of seconds.
    let requested_expiry = c.requested_expiry.as_ref().and_then(|e| v.number(e, "requested_expiry", 1, 86_400));
    CibaSpec {
        client: v.named(&c.client),
        user: v.named(&c.user),
        channel,
        binding_message: c.binding_message.unwrap_or_else(|| "42".into()),
        acr_values: c.acr_values.unwrap_or_else(|| "eidas1".into()),
        scope: c.scope.map(|s| scope(v, s)).unwrap_or(ScopeSpec::Roles(vec![ScopeRole::Ciba])),
        requested_expiry: requested_expiry.map(|e| e as u32),
        two_hints: c.two_hints,
        without_certificate: c.certificate.is_some(),
        assertion_aud: c.aud.unwrap_or_default(),
        approve_with_hook: c.approve.is_some(),
    }
}

fn token(v: &mut Validator<'_>, t: TokenAction) -> TokenSpec {
    TokenSpec {
        client: v.named(&t.client),
        grant: t.grant.as_ref().map(|g| v.text(g)),
        auth: t.auth,
        scope: t.scope.map(|s| scope(v, s)),
        omit: t.omit,
        wrong_secret: t.secret.is_some(),
        client_id: t.client_id.as_ref().map(|c| v.text(c)),
        method: t.method,
        params: t.params.iter().map(|(k, val)| (k.clone(), v.text(val))).collect(),
        resource: t.resource,
        dpop: t.dpop,
        assertion: t.assertion.map(assertion).unwrap_or_default(),
    }
}

fn methods(v: &mut Validator<'_>, listed: Option<Spanned<Names>>) -> Vec<AuthMethod> {
    let Some(listed) = listed else { return Vec::new() };
    let names: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.name()).collect();
    let mut methods = Vec::new();
    for name in &listed.value.0 {
        match AuthMethod::from_name(name) {
            Some(m) => methods.push(m),
            None => v.not_one_of(at(&listed), name, "a client authentication method", &names),
        }
    }
    methods
}

fn scope(v: &mut Validator<'_>, raw: Spanned<RawScope>) -> ScopeSpec {
    let span = at(&raw);
    match raw.value {
        RawScope::Literal(s) => ScopeSpec::Literal(v.text_at(&s, span)),
        RawScope::Roles(names) => {
            if names.is_empty() {
                v.error_help(span, "`roles` is empty", "name at least one role, e.g. `roles: [default]`");
            }
            let choices: Vec<&str> = ScopeRole::ALL.iter().map(|r| r.name()).collect();
            let mut roles = Vec::new();
            for name in &names {
                match ScopeRole::ALL.iter().copied().find(|r| r.name() == name) {
                    Some(r) => roles.push(r),
                    None => v.not_one_of(span, name, "a scope role", &choices),
                }
            }
            ScopeSpec::Roles(roles)
        }
    }
}

fn assertion(a: AssertionAction) -> AssertionSpec {
    let mut claims = a.claims;
    for name in a.drop {
        claims.insert(name, serde_json::Value::Null);
    }
    AssertionSpec {
        mutation: Mutation {
            header: a.header,
            claims,
            exp_in: a.exp_in,
            nbf_in: a.nbf_in,
            aud_array: a.aud_array,
            alg: a.alg.clone().filter(|alg| !matches!(alg.as_str(), "unadvertised" | "other-advertised")),
            hs256_with_public_key: a.hs256_with_public_key,
            bad_signature: a.bad_signature,
        },
        pick_alg: match a.alg.as_deref() {
            Some("unadvertised") => Some(AlgPick::Unadvertised),
            Some("other-advertised") => Some(AlgPick::OtherAdvertised),
            _ => None,
        },
        replay: a.replay.is_some(),
        unregistered_key: a.sign_with == Some(SignWith::Unregistered) || a.jku.is_some(),
        retired_key: a.sign_with == Some(SignWith::Retired),
        serve_jku: a.jku.is_some(),
    }
}

fn resource(v: &mut Validator<'_>, r: ResourceAction) -> ResourceSpec {
    let path = r.path.as_ref().map(|p| {
        let text = v.text(p);
        if !text.starts_with('/') {
            v.error_help(
                at(p),
                format!("resource path `{text}` must start with `/`"),
                "paths are resolved against the target's resource URL",
            );
        }
        text
    });
    ResourceSpec { path, bearer: r.bearer, certificate: r.certificate, dpop: r.dpop }
}

fn expect(v: &mut Validator<'_>, e: Option<Expect>) -> Expectation {
    let Some(e) = e else { return Expectation::default() };
    let status = e.status.as_ref().and_then(|s| {
        let codes = match &s.value {
            RawStatus::One(c) => vec![*c],
            RawStatus::Any(list) => list.clone(),
        };
        if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
            v.error_help(at(s), "`status` must be HTTP status codes between 100 and 599", "e.g. `200` or `[400, 401]`");
            return None;
        }
        Some(match &s.value {
            RawStatus::One(c) => StatusSet::One(*c as u16),
            RawStatus::Any(list) => StatusSet::Any(list.iter().map(|c| *c as u16).collect()),
        })
    });
    let checks: Vec<_> =
        e.checks.as_ref().map(|c| c.value.iter().map(|n| v.named(&Some(n.clone()))).collect()).unwrap_or_default();
    if let Some(list) = &e.checks {
        if list.value.is_empty() && status.is_none() && e.error.is_none() {
            v.error_help(
                at(list),
                "`checks: []` checks nothing",
                "name the checks this step must pass, or remove `expect`",
            );
        }
    }
    Expectation { status, error: e.error.as_ref().map(|s| v.text(s)), checks: checks.into_iter().flatten().collect() }
}

fn is_valid_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::diagnostics::LocatedError;

    fn parse(text: &str) -> Result<Suite, InputErrors> {
        parse_suite(&SourceFile::new(Path::new("s.yaml"), text.to_string()))
    }

    fn first_error(text: &str) -> LocatedError {
        match parse(text).unwrap_err().0.remove(0) {
            InputError::Located(e) => *e,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn short_form_case_becomes_one_step() {
        let s = parse("suite: x\ncases:\n  - id: a\n    token: { scope: implant }\n    expect: { status: 200, checks: [token-response] }\n").unwrap();
        assert_eq!(s.cases[0].steps.len(), 1);
        assert_eq!(s.cases[0].steps[0].expect.checks[0].name, "token-response");
    }

    #[test]
    fn unknown_key_is_located_with_a_suggestion() {
        let e = first_error("suite: x\ncases:\n  - id: a\n    tokn: {}\n");
        assert_eq!(e.location, "s.yaml:4:5");
        assert_eq!(e.help.as_deref(), Some("did you mean `token`?"));
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = parse("suite: x\ncases:\n  - id: A\n    token: {}\n    expect: { status: 200 }\n  - id: b\n  - id: c\n    discovery: { document: openid-configuration }\n    expect: { status: 9000 }\n").unwrap_err();
        assert_eq!(errs.0.len(), 3, "{errs:?}");
    }

    #[test]
    fn a_step_with_two_actions_is_refused() {
        let e = first_error(
            "suite: x\ncases:\n  - id: a\n    steps:\n      - token: {}\n      - introspect: {}\n        revoke: {}\n        expect: { checks: [rfc7662.2.2.active] }\n",
        );
        assert!(e.message.contains("more than one action: `introspect` and `revoke`"), "{}", e.message);
        assert_eq!(e.location, "s.yaml:7:9");
    }

    #[test]
    fn an_expect_on_a_step_with_no_answer_is_refused() {
        for action in [
            "wait: { until: expiry }",
            "mint: { count: 1 }",
            "approve: {}",
            "rotate_key: { publish: both, max_age: 1s }",
        ] {
            let e = first_error(&format!(
                "suite: x\ncases:\n  - id: a\n    steps:\n      - token: {{}}\n        expect: {{ checks: [token-response] }}\n      - {action}\n        expect: {{ status: 418 }}\n"
            ));
            assert!(e.message.contains("no answer to judge"), "{action}: {}", e.message);
        }
    }

    #[test]
    fn a_case_that_expects_nothing_is_refused() {
        let e = first_error("suite: x\ncases:\n  - id: a\n    token: {}\n");
        assert!(e.message.contains("expects nothing"), "{}", e.message);
        let e = first_error("suite: x\ncases:\n  - id: a\n    token: {}\n    expect: { checks: [] }\n");
        assert!(e.message.contains("checks nothing"), "{}", e.message);
    }

    #[test]
    fn missing_env_var_is_named() {
        let e = first_error(
            "suite: x\ncases:\n  - id: a\n    token: { scope: \"${env:OAUTH_HARNESS_SURELY_UNSET}\" }\n    expect: { status: 200 }\n",
        );
        assert!(e.message.contains("OAUTH_HARNESS_SURELY_UNSET"), "{}", e.message);
        assert_eq!(e.location, "s.yaml:4:21");
    }

    #[test]
    fn a_profile_is_told_from_a_suite_by_its_text() {
        assert_eq!(file_kind("# comment\nload:\n  users: 1e999\n"), FileKind::LoadProfile);
        assert_eq!(file_kind("suite: x\ncases: []\n"), FileKind::Suite);
    }
}
