//! Command-line definitions (clap) only; behaviour lives in `commands`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const MILLISECOND: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A duration option bounded on both sides: an absurd value (`--timeout 1000h`, a zero lifetime)
/// is refused as usage (exit 2) with the range, not obeyed or silently raised.
fn within(min: Duration, max: Duration) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| {
        let d = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 5s, 250ms, 2m)"))?;
        if d < min || d > max {
            let min = if min.is_zero() { "0s".to_string() } else { humantime::format_duration(min).to_string() };
            return Err(format!("must be between {min} and {}", humantime::format_duration(max)));
        }
        Ok(d)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "oauth-harness",
    version,
    // goose turns on clap's `wrap_help`; our help keeps its own line breaks (examples stay whole).
    term_width = 0,
    about = "Conformance and load test harness for OAuth 2.0 / OpenID Connect servers",
    long_about = "Runs YAML scenarios against an OAuth 2.0 / OpenID Connect server — or the built-in mocks — \
and reports, rule by rule, what the server got right and wrong.",
    after_help = "Exit codes: 0 all passed · 1 a check failed or a load threshold was crossed · 2 invalid input or usage · 3 runtime error (target unreachable, timeout, TLS)\n\n\
Examples:\n  oauth-harness run scenarios/identity-server\n  oauth-harness run scenarios --target staging.yaml --report-junit reports/junit.xml\n  oauth-harness mock identity-server --port 8080"
)]
pub struct Cli {
    /// Never colour the output (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run conformance scenarios against a target or the embedded mocks.
    #[command(after_help = run_help())]
    Run(RunArgs),
    /// Load the token or introspection endpoint (goose) and judge the profile's thresholds.
    #[command(
        after_help = "Exit codes: 0 every threshold (and regression limit) held · 1 one failed (or no request succeeded) · 2 invalid profile or usage · 3 runtime error\n\n\
Examples:\n  oauth-harness load scenarios/load/token-secret.yaml --duration 10s\n  oauth-harness load scenarios/load/mixed.yaml --target staging.yaml --users 64 --report-json reports/load.json\n  oauth-harness load scenarios/load/token-secret.yaml --mock-defect token-server-error-10pct\n  oauth-harness load scenarios/load/token-secret.yaml --shard 2/4 --start-at 2026-12-01T12:00:00Z --report-json shard-2.json\n  oauth-harness load merge shard-*.json --report-html merged.html --baseline last-release.json",
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Load(LoadArgs),
    /// Certify a client: run it against a client suite's mock and judge every request it makes.
    #[command(after_help = certify_help())]
    Certify(CertifyArgs),
    /// Read scenarios, profiles (and a target) and report every problem, sending nothing.
    #[command(after_help = validate_help())]
    Validate(ValidateArgs),
    /// Print the check catalogue: id, severity, spec reference, what must hold.
    #[command(
        after_help = "Examples:\n  oauth-harness checks | grep rfc7662\n  oauth-harness checks --markdown > docs/checks.md"
    )]
    Checks(ChecksArgs),
    /// Start a built-in mock server for your own client to talk to.
    #[command(subcommand)]
    Mock(MockCommand),
    /// Generate client key pairs and JWKS for private_key_jwt.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check an evidence bundle written by `run --evidence` or `certify --evidence`.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  oauth-harness completions bash > /etc/bash_completion.d/oauth-harness")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn certify_help() -> String {
    "The client gets its configuration in OAUTH_HARNESS_* environment variables (docs/certify.md lists them).\n\n\
Exit codes: 0 the client kept every rule · 1 it broke one (or made no request) · 2 invalid suite, usage, or a command that cannot start · 3 the mock could not start\n\n\
Examples:\n  oauth-harness certify scenarios/clients/identity-server.yaml -- ./my-client --config dev.toml\n  oauth-harness certify scenarios/clients/psc-ciba.yaml --report-html reports/client.html -- target/release/examples/reference_client\n  oauth-harness certify scenarios/clients/smart-backend.yaml --listen --port 9400 --for 2m\n  oauth-harness certify scenarios/clients/identity-server.yaml --evidence out/ --client-version 4.2.0 -- ./my-client"
        .to_string()
}

#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// The client suite (YAML with a top-level `client_suite:`), e.g. scenarios/clients/psc-ciba.yaml.
    pub suite: PathBuf,
    /// The client command and its arguments, after `--`; run once per case.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Instead of a command: start the first case's mock for a client running elsewhere.
    #[arg(long, conflicts_with = "command", requires = "for_")]
    pub listen: bool,
    /// With --listen: the port on 127.0.0.1 (default: a free one).
    #[arg(long, requires = "listen")]
    pub port: Option<u16>,
    /// With --listen: how long to observe, e.g. 2m (at most 10m).
    #[arg(long = "for", id = "for_", value_name = "DURATION", value_parser = humantime::parse_duration, requires = "listen")]
    pub for_: Option<Duration>,
    /// The version of the client certified, recorded in the evidence.
    #[arg(long, value_name = "VERSION")]
    pub client_version: Option<String>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Write a JSON report.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write a self-contained HTML report, with the client's timeline.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write a Markdown summary (`-`: append to $GITHUB_STEP_SUMMARY, or print it).
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<PathBuf>,
    /// Write an evidence bundle: report, suite, client command and version, SHA-256 manifest.
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// Sign the evidence manifest (detached JWS) with this private key from `keys generate`.
    #[arg(long, value_name = "KEY.pem", requires = "evidence")]
    pub evidence_key: Option<PathBuf>,
    /// Replace an earlier bundle in the --evidence folder (never other files).
    #[arg(long, requires = "evidence")]
    pub evidence_force: bool,
    /// Show every check, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
}

/// The step actions a scenario may use, from the action table.
fn actions() -> String {
    format!("Step actions (docs/scenarios.md has each one's keys):\n{}", crate::model::action::actions_help())
}

fn run_help() -> String {
    format!(
        "{}\nExamples:\n  oauth-harness run scenarios/identity-server\n  oauth-harness run scenarios --mock-defect no-cache-headers\n  oauth-harness run scenarios --target staging.yaml --filter 'reject-*' --report-json r.json",
        actions()
    )
}

fn validate_help() -> String {
    format!("{}\nExample:\n  oauth-harness validate scenarios --target staging.yaml", actions())
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Recompute every digest of the manifest and say what changed (exit 1 if anything did).
    #[command(
        after_help = "Examples:\n  oauth-harness evidence verify reports/evidence\n  oauth-harness evidence verify reports/evidence --jwk keys/vendor/jwk.json"
    )]
    Verify {
        /// The evidence folder.
        dir: PathBuf,
        /// Also check manifest.jws against this public JWK (from `keys generate`).
        #[arg(long, value_name = "FILE")]
        jwk: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key pair: private.pem (PKCS#8), public.pem, jwk.json, jwks.json, and key.json
    /// (how the kid was derived, so `keys jwks` and targets derive the same one).
    #[command(
        after_help = "Examples:\n  oauth-harness keys generate --alg RS384 --out keys/backend\n  oauth-harness keys generate --alg ES384 --kid pem-sha256-16 --out keys/backend-ec"
    )]
    Generate(KeysGenerateArgs),
    /// Generate a test PKI for mTLS: a CA, a server certificate for 127.0.0.1/localhost, a
    /// registered client's certificate (PEM and PKCS#12) and another client's.
    #[command(after_help = "Example:\n  oauth-harness keys tls --out fixtures/pki")]
    Tls {
        /// Folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace a PKI that is already there (refused otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Print a JWKS (public keys only) for existing private key PEM files, to register by value.
    #[command(after_help = "Example:\n  oauth-harness keys jwks keys/backend/private.pem keys/backend-ec/private.pem")]
    Jwks(KeysJwksArgs),
}

#[derive(Debug, Args)]
pub struct KeysGenerateArgs {
    #[arg(long, value_enum)]
    pub alg: crate::support::keys::KeyAlg,
    /// RSA modulus size.
    #[arg(long, default_value = "2048", value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(["2048", "3072", "4096"]), |s| s.parse::<usize>().unwrap_or(2048)))]
    pub bits: usize,
    /// How to derive the kid.
    #[arg(long, value_enum, default_value = "rfc7638")]
    pub kid: crate::support::keys::KidStyle,
    /// Folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace a key that is already there (refused otherwise).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct KeysJwksArgs {
    /// Private key PEM files (PKCS#8, PKCS#1 or SEC1).
    #[arg(required = true)]
    pub keys: Vec<PathBuf>,
    /// How to derive each kid; by default as `keys generate` recorded it beside the key
    /// (key.json), else rfc7638.
    #[arg(long, value_enum)]
    pub kid: Option<crate::support::keys::KidStyle>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or folders (searched recursively, in sorted order).
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// Target file; without it the embedded mocks are started on 127.0.0.1.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// Switch a defect on in the embedded mocks (repeatable; `oauth-harness mock identity-server --list-defects`).
    #[arg(long = "mock-defect", value_name = "NAME")]
    pub mock_defects: Vec<String>,
    /// Run only cases whose id (or suite/id) matches this glob, e.g. 'reject-*'.
    #[arg(long, value_name = "GLOB")]
    pub filter: Option<String>,
    /// Leave out cases whose id (or suite/id) matches this glob, e.g. 'psc-ciba/*'.
    #[arg(long, value_name = "GLOB")]
    pub skip: Option<String>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Write a JSON report.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write a Markdown summary (`-`: append to $GITHUB_STEP_SUMMARY, or print it).
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<PathBuf>,
    /// Write an evidence bundle for self-certification: report, inputs, versions, SHA-256 manifest.
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// Sign the evidence manifest (detached JWS) with this private key from `keys generate`.
    #[arg(long, value_name = "KEY.pem", requires = "evidence")]
    pub evidence_key: Option<PathBuf>,
    /// Replace an earlier bundle in the --evidence folder (never other files).
    #[arg(long, requires = "evidence")]
    pub evidence_force: bool,
    /// Only failures and the summary; no progress bar.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show every exchange (request and response, redacted) in the terminal report.
    #[arg(long, short)]
    pub verbose: bool,
    /// SHOULD-level findings fail the run too (and stale known deviations, and a run that skipped every case).
    #[arg(long)]
    pub strict: bool,
    /// A reviewed list of deviations the gate accepts for now: reported as known, not failed.
    #[arg(long, value_name = "FILE")]
    pub known_deviations: Option<PathBuf>,
    /// Per-request timeout (overrides the target's), e.g. 5s (1ms to 5m).
    #[arg(long, value_name = "DURATION", value_parser = within(MILLISECOND, 300 * SECOND))]
    pub timeout: Option<Duration>,
    /// Cases in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
}

#[derive(Debug, Args)]
pub struct ChecksArgs {
    /// Print the catalogue as a Markdown page (what docs/checks.md holds).
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(subcommand)]
    pub command: Option<LoadCommand>,
    /// The load profile (YAML with a top-level `load:` key), e.g. scenarios/load/token-secret.yaml.
    #[arg(required = true)]
    pub profile: Option<PathBuf>,
    /// Target file; without it the embedded Identity Server mock is started on 127.0.0.1.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// Switch a defect on in the embedded Identity Server mock (repeatable; `oauth-harness mock identity-server --list-defects`).
    #[arg(long = "mock-defect", value_name = "NAME")]
    pub mock_defects: Vec<String>,
    /// Hold the embedded mock's token answers this much longer, e.g. 40ms: a slower release to try
    /// `--baseline` on (not a defect: it breaks no rule).
    #[arg(long, value_name = "DURATION", value_parser = within(Duration::ZERO, 10 * SECOND), conflicts_with = "target")]
    pub mock_latency: Option<Duration>,
    /// Concurrent users (overrides the profile).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: Option<u32>,
    /// Time to start all users, e.g. 5s (overrides the profile).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub ramp: Option<Duration>,
    /// How long to run once every user has started, e.g. 30s (overrides the profile).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "iterations")]
    pub duration: Option<Duration>,
    /// Run each user through the paths N times instead of for a duration.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: Option<u32>,
    /// Target rate for the whole run, e.g. 500/s (overrides the profile).
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Write a self-contained HTML report (tables and SVG charts).
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write the JSON report (stable shape, includes each path's histogram).
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write a Markdown summary (`-`: append to $GITHUB_STEP_SUMMARY, or print it).
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<PathBuf>,
    /// Also write goose's own HTML report (its charts load a script from a CDN).
    #[arg(long, value_name = "FILE")]
    pub report_goose_html: Option<PathBuf>,
    /// Write a JUnit XML report: one testcase per threshold and regression limit.
    #[arg(long, value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Run shard K of N of the profile (users, rate, assertion pool and tokens split; docs/distributed.md).
    #[arg(long, value_name = "K/N", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Run one of N shards, its index from JOB_COMPLETION_INDEX (0-based, as a Kubernetes Indexed Job sets it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shards: Option<u32>,
    /// Hold traffic until this instant (RFC 3339, e.g. 2026-12-01T12:00:00Z; at most an hour ahead).
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// Compare with a previous run's JSON report and judge the profile's `regression:` limits.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub baseline: Option<PathBuf>,
    /// Only the final table; no progress.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// Merge the JSON reports of a distributed run's shards into one report.
    #[command(
        after_help = "Histograms are added (exact percentiles), counts summed, timelines aligned by wall clock, and the profile's thresholds judged on the merged figures.\n\n\
Exit codes: 0 every threshold held · 1 one failed · 2 a report is missing, of another profile or schema, or unreadable\n\n\
Example:\n  oauth-harness load merge reports/shard-*.json --report-html reports/merged.html"
    )]
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (`load --shard … --report-json`).
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write the merged HTML report.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write a Markdown summary (`-`: append to $GITHUB_STEP_SUMMARY, or print it).
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<PathBuf>,
    /// Write a JUnit XML report: one testcase per threshold and regression limit.
    #[arg(long, value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Compare with a previous run's JSON report and judge the profile's `regression:` limits.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario files or folders.
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// Check the suites against this target (clients, endpoints) instead of the embedded mocks'
    /// clients, as `run --target` would before traffic.
    #[arg(long, value_name = "FILE")]
    pub target: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum MockCommand {
    /// IdentityServer-style server: /connect/token, discovery, JWKS, /api/implant.
    #[command(
        after_help = "Examples:\n  oauth-harness mock identity-server --port 8080\n  oauth-harness mock identity-server --defect invalid-client-400 --defect no-cache-headers\n  oauth-harness mock identity-server --list-defects"
    )]
    IdentityServer(MockArgs),
    /// Pro Santé Connect CIBA (poll mode) behind a TLS front that asks for client certificates.
    #[command(
        after_help = "Examples:\n  oauth-harness mock psc --port 8443\n  oauth-harness mock psc --defect no-slow-down\n  oauth-harness mock psc --list-defects"
    )]
    Psc(PscMockArgs),
}

/// What every mock command takes.
#[derive(Debug, Args)]
pub struct MockCommon {
    /// Port on 127.0.0.1 (a free one when absent).
    #[arg(long)]
    pub port: Option<u16>,
    /// Switch a defect on (repeatable).
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<String>,
    /// Print the defects this mock can switch on, one a line (name, then the rule it breaks).
    #[arg(long)]
    pub list_defects: bool,
    /// Live entries each store holds at most (used jtis, revocations, CIBA requests; 2097152
    /// when absent): at the limit the mock answers 503 with Retry-After and forgets nothing
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16_777_216))]
    pub store_limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct PscMockArgs {
    #[command(flatten)]
    pub common: MockCommon,
    /// `interval` of backchannel answers (PSC uses 5 s; 1s to 10m).
    #[arg(long, value_name = "DURATION", value_parser = within(SECOND, 600 * SECOND))]
    pub interval: Option<Duration>,
    /// `expires_in` of backchannel answers (PSC uses 120 s; 1s to 1h).
    #[arg(long, value_name = "DURATION", value_parser = within(SECOND, 3600 * SECOND))]
    pub expires_in: Option<Duration>,
    /// Keep one pending request per client and user: a new one supersedes the older (as some
    /// servers do; CIBA allows it)
    #[arg(long)]
    pub one_pending_per_user: bool,
    /// Offer TLS 1.3 only, as a server held to a TLS 1.3 floor
    #[arg(long)]
    pub tls13_only: bool,
    /// Take mutual TLS only at the RFC 8705 §5 mtls_endpoint_aliases (under /mtls), as a
    /// deployment with a separate mTLS host does
    #[arg(long)]
    pub mtls_endpoint_aliases: bool,
    /// Lifetime of the access tokens and id_tokens (PSC uses 120 s; 1s to 24h)
    #[arg(long, value_name = "DURATION", value_parser = within(SECOND, DAY))]
    pub token_lifetime: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct MockArgs {
    #[command(flatten)]
    pub common: MockCommon,
    /// Registered clients from this YAML/JSON file instead of the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub clients: Option<PathBuf>,
    /// Access token lifetime (1s to 24h).
    #[arg(long, value_name = "DURATION", value_parser = within(SECOND, DAY))]
    pub token_ttl: Option<Duration>,
}
