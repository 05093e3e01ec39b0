//! `load`: a goose attack on the token and introspection paths. goose schedules the users, ramps,
//! throttles (`rate:`), mitigates coordinated omission and keeps its own metrics; our transactions
//! send each request with a shared reqwest client, check the answer, and record the latency in an
//! HDR histogram per path, from which the reported percentiles and the thresholds come.

pub mod baseline;
pub mod merge;
pub mod paths;
pub mod pool;
pub mod report;
pub mod shard;
pub mod stats;
pub mod thresholds;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use goose::config::GooseConfiguration;
use goose::metrics::GooseCoordinatedOmissionMitigation;
use goose::prelude::{GooseAttack, Scenario, Transaction};

use self::paths::{Bodies, PathRuntime, PreparedAuth};
use self::pool::SigningPool;
use self::report::{LoadReport, PathSummary, Settings};
use self::stats::{LiveCounters, PathRecorder, PathStats};
use self::transport::{TlsMaterial, Transport};
use crate::model::profile::{self, CoMitigation, PathKind, Profile, RunSettings};
use crate::model::{AuthMethod, Target};
use crate::protocol::flows::discovery::{DiscoveryError, Endpoints, discover_endpoints};
use crate::protocol::http::{HttpClient, TlsSettings};
use crate::support::keys::{KeyAlg, KeyPair, KidStyle};
use crate::support::secret::Redactor;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Target(#[from] DiscoveryError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("path `{path}`: the target gives no {member}")]
    #[diagnostic(help("set `{member}` in the target file"))]
    MissingEndpoint { path: String, member: &'static str },
    #[error("path `{path}`: minting the tokens to introspect failed: {reason}")]
    #[diagnostic(help("the token_client must be able to get tokens before the run starts"))]
    Minting { path: String, reason: String },
    #[error("path `{path}`: {reason}")]
    Path { path: String, reason: String },
    #[error("path `{path}`: {url} cannot be reached ({kind})")]
    #[diagnostic(help("is the server up, and is this the right URL? Nothing was measured"))]
    Unreachable { path: String, url: String, kind: &'static str },
    #[error("goose refused the run: {0}")]
    Goose(String),
}

/// What the progress line shows, once a second.
#[derive(Debug, Clone)]
pub struct Live {
    pub elapsed: Duration,
    pub requests: u64,
    pub errors: u64,
    pub rate: f64,
    pub p95_ms: Option<f64>,
}

/// How a run tells the caller what it is doing.
#[derive(Clone)]
pub struct Hooks {
    /// Once a second while traffic flows.
    pub on_tick: Arc<dyn Fn(&Live) + Send + Sync>,
    /// Before traffic, for steps that take a while (minting tokens, pre-signing assertions).
    pub on_status: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Hooks {
    pub fn silent() -> Self {
        Self { on_tick: Arc::new(|_| {}), on_status: Arc::new(|_| {}) }
    }
}

/// Runs the profile against the target and returns the report (thresholds judged).
pub async fn run(
    profile: &Profile,
    target: &Target,
    settings: &RunSettings,
    redactor: &Redactor,
    hooks: Hooks,
) -> Result<LoadReport, LoadError> {
    target.register_secrets(redactor);
    let tls = TlsSettings { ca: target.ca.certs.clone(), ..Default::default() };
    let http = HttpClient::with_tls(target.timeout, &tls).map_err(|e| LoadError::Client(e.to_string()))?;
    let endpoints = discover_endpoints(&http, target).await?;

    let live = Arc::new(LiveCounters::default());
    let mut notes = Vec::new();
    let mut pools = Vec::new();
    let mut runtimes = Vec::new();
    for spec in &profile.paths {
        let mut path =
            prepare_path(spec, target, &endpoints, settings, redactor, &live, &mut pools, &mut notes, &hooks).await?;
        path.goose_metrics = goose_metrics(profile, settings);
        runtimes.push((Arc::new(path), spec.weight));
    }

    // A target that cannot be reached at all is a runtime error (exit 3), not a run of failures.
    for (path, _) in &runtimes {
        if let Err(kind) = path.probe().await {
            return Err(LoadError::Unreachable { path: path.name.clone(), url: path.transport.url(), kind });
        }
    }
    let config = goose_config(profile, target, settings);
    let mut scenario = Scenario::new("load");
    for (path, weight) in &runtimes {
        let p = path.clone();
        let transaction = Transaction::new(Arc::new(move |user| {
            let p = p.clone();
            Box::pin(async move { p.fire(user).await })
        }))
        .set_name(&path.name)
        .set_weight(*weight)
        .map_err(|e| LoadError::Goose(e.to_string()))?;
        scenario = scenario.register_transaction(transaction);
    }
    let attack = GooseAttack::initialize_with_config(config)
        .map_err(|e| LoadError::Goose(e.to_string()))?
        .set_client_builder_without_cookies(goose::client::GooseClientBuilder::new().without_cookies())
        .map_err(|e| LoadError::Goose(e.to_string()))?
        .register_scenario(scenario);

    // The hard cap: goose stops gracefully through its killswitch, as on Ctrl-C.
    let capped = Arc::new(AtomicBool::new(false));
    let cap = {
        let capped = capped.clone();
        let max = settings.max_duration;
        tokio::spawn(async move {
            tokio::time::sleep(max).await;
            capped.store(true, Ordering::SeqCst);
            goose::trigger_killswitch("max_duration reached");
        })
    };
    // Every shard starts at the same instant, once it is ready (minted, pre-signed, probed).
    if let Some(at) = settings.start_at {
        match at.duration_since(SystemTime::now()) {
            Ok(wait) => {
                (hooks.on_status)(&format!("waiting {:.1} s for the shared start time…", wait.as_secs_f64()));
                tokio::time::sleep(wait).await;
            }
            Err(late) => notes.push(format!(
                "started {:.1} s after --start-at: preparing took longer than the time left",
                late.duration().as_secs_f64()
            )),
        }
    }
    let wall_start = SystemTime::now();
    let traffic_start = Instant::now();
    let _ = live.started.set(traffic_start);
    let ticker =
        spawn_ticker(runtimes.iter().map(|(p, _)| p.clone()).collect(), live.clone(), traffic_start, hooks.on_tick);
    let result = attack.execute().await;
    let seconds = traffic_start.elapsed().as_secs_f64();
    cap.abort();
    ticker.abort();
    let stopped_by_cap = capped.load(Ordering::SeqCst);
    let interrupted = goose::is_killswitch_triggered() && !stopped_by_cap;
    if let Err(e) = result {
        return Err(LoadError::Goose(e.to_string()));
    }

    let per_path: Vec<(Arc<PathRuntime>, usize, PathStats)> =
        runtimes.iter().map(|(p, w)| (p.clone(), *w, p.recorder.snapshot())).collect();
    let mut all = PathStats::default();
    for (_, _, s) in &per_path {
        all.merge(s);
    }
    let shard = settings.shard.and_then(|(k, n)| shard::Shard::new(k, n).ok());
    // A shard's figures are a part: the thresholds are about the whole, judged by `load merge`.
    let judged: &[profile::Threshold] = if shard.is_some() { &[] } else { &profile.thresholds };
    if let Some(s) = shard {
        notes.push(format!("shard {s}: the thresholds are judged by `load merge` on every shard's report"));
    }
    let verdicts = thresholds::evaluate(
        judged,
        |scope| match scope {
            None => Some(&all),
            Some(name) => per_path.iter().find(|(p, _, _)| p.name == name).map(|(_, _, s)| s),
        },
        seconds,
    );
    if stopped_by_cap {
        notes.push(format!("stopped by max_duration ({})", humantime::format_duration(settings.max_duration)));
    }
    if interrupted {
        notes.push("interrupted (Ctrl-C): the figures cover the part that ran".into());
    }
    let signing_pools: BTreeMap<String, pool::PoolReport> =
        pools.iter().map(|(name, pool, prefilled)| (name.clone(), pool.report(*prefilled))).collect();
    for (name, report) in &signing_pools {
        if report.starved > 0 {
            notes.push(format!(
                "path `{name}`: the signing pool ran dry {}; signing, not the server, limited the rate then",
                crate::support::text::count(report.starved, "time")
            ));
        }
    }
    let traffic_started_unix_ms =
        wall_start.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
    Ok(LoadReport {
        format: report::FORMAT.to_string(),
        profile: profile.name.clone(),
        profile_digest: profile_digest(profile),
        traffic_started_unix_ms,
        shard,
        merged_from: None,
        profile_thresholds: profile.thresholds.clone(),
        regression_limits: profile.regression.clone(),
        baseline: None,
        description: profile.description.clone(),
        target: target.issuer.to_string(),
        target_origin: target.origin.clone(),
        started_at: humantime::format_rfc3339_seconds(wall_start).to_string(),
        duration_secs: seconds,
        interrupted,
        stopped_by_cap,
        settings: Settings {
            users: settings.users,
            ramp_secs: settings.ramp.as_secs_f64(),
            duration_secs: settings.iterations.is_none().then_some(settings.duration.as_secs_f64()),
            iterations: settings.iterations,
            rate: settings.rate,
            coordinated_omission: profile.coordinated_omission,
            max_duration_secs: settings.max_duration.as_secs_f64(),
        },
        total: PathSummary::new("all", "all", "", 0, &all, seconds),
        paths: per_path
            .iter()
            .map(|(p, w, s)| PathSummary::new(&p.name, p.kind.name(), p.transport.name(), *w, s, seconds))
            .collect(),
        thresholds_passed: verdicts.iter().all(|v| v.passed),
        thresholds: verdicts,
        signing_pools,
        notes,
    })
}

/// SHA-256 (hex) of the profile's text: reports are merged only with reports of the same profile.
pub fn profile_digest(profile: &Profile) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(profile.source.text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

type Pools = Vec<(String, Arc<SigningPool>, usize)>;

#[allow(clippy::too_many_arguments)]
async fn prepare_path(
    spec: &profile::PathSpec,
    target: &Target,
    endpoints: &Endpoints,
    settings: &RunSettings,
    redactor: &Redactor,
    live: &Arc<LiveCounters>,
    pools: &mut Pools,
    notes: &mut Vec<String>,
    hooks: &Hooks,
) -> Result<PathRuntime, LoadError> {
    let path_error = |reason: String| LoadError::Path { path: spec.name.clone(), reason };
    let client = target.clients.get(&spec.client).ok_or_else(|| path_error(format!("no client `{}`", spec.client)))?;
    let method = spec.auth.unwrap_or(client.auth);
    // A client with a certificate presents it (transport_for), at the mTLS aliases then.
    let mtls = client.identity.is_some();
    let (url, bodies) = match spec.kind {
        PathKind::Token => (endpoints.token_for(mtls).clone(), Bodies::Fixed(token_params(client.scope.as_deref()))),
        PathKind::Introspection => {
            let url = endpoints.introspection_for(mtls).cloned().ok_or_else(|| LoadError::MissingEndpoint {
                path: spec.name.clone(),
                member: "introspection_endpoint",
            })?;
            let tokens = mint_tokens(spec, target, endpoints, redactor).await?;
            let bodies = tokens
                .iter()
                .map(|t| {
                    let token: String = form_urlencoded::byte_serialize(t.expose().as_bytes()).collect();
                    format!("token={token}&token_type_hint=access_token")
                })
                .collect();
            (url, Bodies::Cycle { bodies, next: Default::default() })
        }
    };
    let pool = if method == AuthMethod::PrivateKeyJwt {
        let key =
            client.key.clone().ok_or_else(|| path_error(format!("client `{}` has no private_key", spec.client)))?;
        // An explicit `assertion_pool` is filled whole; a derived one only for a few seconds (the
        // workers keep up from there, and any wait is reported): a guess must not hold the run up.
        let (capacity, budget) = match settings.assertion_pool {
            Some(n) => (n, PREFILL_BUDGET),
            None => (pool_capacity(settings), DERIVED_PREFILL_BUDGET),
        };
        // Signing runs on its own threads; one per core leaves the users the rest of the time.
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
        let prefix = match &bodies {
            Bodies::Fixed(params) => format!("{params}&"),
            Bodies::Cycle { .. } => String::new(),
        };
        let pool = Arc::new(SigningPool::start(
            key,
            &client.client_id,
            endpoints.token_for(mtls).as_str(),
            &prefix,
            capacity,
            workers,
        ));
        (hooks.on_status)(&format!(
            "path `{}`: signing up to {capacity} client assertions ahead of the run…",
            spec.name
        ));
        let signing = Instant::now();
        let prefilled = pool.prefill(capacity, budget).await;
        notes.push(format!(
            "path `{}`: {prefilled} client assertions signed ahead of the run in {:.1}s (pool of {capacity}, {workers} signing threads)",
            spec.name,
            signing.elapsed().as_secs_f64()
        ));
        pools.push((spec.name.clone(), pool.clone(), prefilled));
        Some(pool)
    } else {
        None
    };
    let auth = PreparedAuth::prepare(client, method, pool).map_err(path_error)?;
    let dpop = if spec.dpop {
        // One proof key per path, made for the run (RFC 9449 §4.2: the client's own key pair).
        let key = KeyPair::generate(KeyAlg::Es384, 2048, KidStyle::Rfc7638).map_err(|e| path_error(e.to_string()))?;
        // Proofs are fresh for DPOP_FRESH only: signing further ahead would be thrown away.
        let fresh = settings.rate.unwrap_or(settings.users.saturating_mul(1000)) * pool::DPOP_FRESH.as_secs() as usize;
        let capacity = pool_capacity(settings).min(fresh.max(256));
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
        let pool = Arc::new(SigningPool::start_dpop(Arc::new(key), url.as_str(), capacity, workers));
        (hooks.on_status)(&format!("path `{}`: signing up to {capacity} DPoP proofs ahead of the run…", spec.name));
        let signing = Instant::now();
        let prefilled = pool.prefill(capacity, DERIVED_PREFILL_BUDGET).await;
        notes.push(format!(
            "path `{}`: {prefilled} DPoP proofs signed ahead of the run in {:.1}s (pool of {capacity}, {workers} signing threads)",
            spec.name,
            signing.elapsed().as_secs_f64()
        ));
        pools.push((format!("{} (DPoP proofs)", spec.name), pool.clone(), prefilled));
        Some(pool)
    } else {
        None
    };
    let mut path = PathRuntime::new(
        spec.name.clone(),
        spec.kind,
        transport_for(client, target, url)?,
        auth,
        bodies,
        PathRecorder::new(live.clone()),
    );
    path.dpop = dpop;
    if profile_corrects(settings) {
        path.expected_interval_us = settings.rate.map(|rate| (settings.users as u64 * 1_000_000) / rate as u64);
    }
    Ok(path)
}

/// Coordinated-omission correction of our histogram needs a known cadence: a target rate.
fn profile_corrects(settings: &RunSettings) -> bool {
    settings.rate.is_some()
}

/// How long the run may wait for the assertion pool to fill before traffic starts.
const PREFILL_BUDGET: Duration = Duration::from_secs(600);
/// …and how long when the pool's size is only derived from the rate or the user count.
const DERIVED_PREFILL_BUDGET: Duration = Duration::from_secs(10);
/// At most this many assertions are held unless the profile says otherwise (≈ 0.8 KB each
/// for RS384: ≈ 400 MB).
const MAX_POOL: usize = 500_000;

/// Enough assertions for the planned requests, bounded. A target rate says how many a second;
/// without one, a generous guess per user. Only the first 4 minutes are pre-signed: an
/// assertion lives 5 minutes and is never handed out in its last one.
fn pool_capacity(settings: &RunSettings) -> usize {
    let per_second = settings.rate.unwrap_or(settings.users.saturating_mul(1000));
    let seconds = (settings.ramp + settings.duration).as_secs().clamp(1, 240) as usize;
    per_second.saturating_mul(seconds).clamp(256, MAX_POOL)
}

fn token_params(scope: Option<&str>) -> String {
    match scope {
        Some(scope) => {
            let scope: String = form_urlencoded::byte_serialize(scope.as_bytes()).collect();
            format!("grant_type=client_credentials&scope={scope}")
        }
        None => "grant_type=client_credentials".to_string(),
    }
}

/// How `client`'s requests to `url` go on the wire (see `transport.rs`).
fn transport_for(client: &crate::model::Client, target: &Target, url: url::Url) -> Result<Transport, LoadError> {
    let tls = TlsSettings {
        ca: target.ca.certs.clone(),
        identity: client.identity.as_ref().map(|i| i.identity.clone()),
        ..Default::default()
    };
    let http = HttpClient::with_tls(target.timeout, &tls).map_err(|e| LoadError::Client(e.to_string()))?;
    let material = TlsMaterial { ca_pem: &target.ca.pem, identity_pem: client.identity.as_ref().map(|i| &i.pem) };
    Ok(Transport::choose(url, http.reqwest_client().clone(), material, target.timeout))
}

/// The tokens an introspection path cycles through, minted one by one before the run.
async fn mint_tokens(
    spec: &profile::PathSpec,
    target: &Target,
    endpoints: &Endpoints,
    redactor: &Redactor,
) -> Result<Vec<crate::support::secret::Secret>, LoadError> {
    let minting = |reason: String| LoadError::Minting { path: spec.name.clone(), reason };
    let (name, _) = spec.token_client.as_ref().ok_or_else(|| minting("no token_client".into()))?;
    let client = target.clients.get(name).ok_or_else(|| minting(format!("no client `{name}`")))?;
    let token_endpoint = endpoints.token_for(client.identity.is_some());
    let pool = match client.auth {
        AuthMethod::PrivateKeyJwt => {
            let key = client.key.clone().ok_or_else(|| minting(format!("client `{name}` has no private_key")))?;
            let prefix = format!("{}&", token_params(client.scope.as_deref()));
            Some(Arc::new(SigningPool::start(key, &client.client_id, token_endpoint.as_str(), &prefix, 4, 1)))
        }
        _ => None,
    };
    let auth = PreparedAuth::prepare(client, client.auth, pool).map_err(minting)?;
    let minter = PathRuntime::new(
        format!("{}-minting", spec.name),
        PathKind::Token,
        transport_for(client, target, token_endpoint.clone())?,
        auth,
        Bodies::Fixed(token_params(client.scope.as_deref())),
        // Minting is not part of the run: its requests count nowhere.
        PathRecorder::new(Arc::default()),
    );
    let mut tokens = Vec::with_capacity(spec.tokens);
    for _ in 0..spec.tokens {
        let token = minter.mint_token().await.map_err(minting)?;
        redactor.register_secret(&token);
        tokens.push(token);
    }
    Ok(tokens)
}

/// goose's per-request metrics feed its own report and its coordinated-omission backfill; our
/// figures come from our histograms. Without either, the hot path skips them: no metric built,
/// no channel send per request.
fn goose_metrics(profile: &Profile, settings: &RunSettings) -> bool {
    settings.goose_report.is_some() || profile.coordinated_omission != CoMitigation::Disabled
}

fn goose_config(profile: &Profile, target: &Target, settings: &RunSettings) -> GooseConfiguration {
    let mut c = GooseConfiguration::default();
    c.host = Some(target.issuer.to_string());
    c.users = Some(settings.users);
    if settings.ramp.is_zero() || settings.users < 2 {
        // Every user at once.
        c.increase_rate = Some((settings.users * 1000).to_string());
    } else {
        c.increase_time = Some(format!("{}s", settings.ramp.as_secs().max(1)));
    }
    match settings.iterations {
        Some(n) => c.iterations = Some(n),
        None => c.run_time = Some(format!("{}s", settings.duration.as_secs().max(1))),
    }
    c.throttle_requests = settings.rate;
    c.co_mitigation = Some(match profile.coordinated_omission {
        CoMitigation::Disabled => GooseCoordinatedOmissionMitigation::Disabled,
        CoMitigation::Average => GooseCoordinatedOmissionMitigation::Average,
        CoMitigation::Minimum => GooseCoordinatedOmissionMitigation::Minimum,
        CoMitigation::Maximum => GooseCoordinatedOmissionMitigation::Maximum,
    });
    // Our own table and reports replace goose's printout; its controllers stay closed (no ports
    // opened behind the user's back); warnings (e.g. "caught ctrl-c") still show.
    c.no_metrics = !goose_metrics(profile, settings);
    c.quiet = 1;
    c.no_print_metrics = true;
    c.no_error_summary = true;
    c.no_telnet = true;
    c.report_file = settings.goose_report.iter().map(|p| p.display().to_string()).collect();
    c
}

fn spawn_ticker(
    paths: Vec<Arc<PathRuntime>>,
    live: Arc<LiveCounters>,
    started: Instant,
    on_tick: Arc<dyn Fn(&Live) + Send + Sync>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        let mut last = (Instant::now(), 0u64);
        loop {
            interval.tick().await;
            let requests = live.requests.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate = (requests - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
            last = (now, requests);
            let mut all = PathStats::default();
            for p in &paths {
                all.merge(&p.recorder.snapshot());
            }
            on_tick(&Live {
                elapsed: started.elapsed(),
                requests,
                errors: live.errors.load(Ordering::Relaxed),
                rate,
                p95_ms: all.quantile_ms(0.95),
            });
        }
    })
}
