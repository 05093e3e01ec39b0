//! Preflight: what must hold between the scenarios, the catalogue and the target before any
//! traffic — every check a suite names exists (and `require` promotes only SHOULD checks), every
//! client a case acts as exists and can authenticate as asked. No network.

use crate::checks::{self, Severity};
use crate::model::target::DEFAULT_INTROSPECTION_CLIENT;
use crate::model::{Action, AuthChoice, BearerChoice, Case, Named, Suite, Target};
use crate::support::diagnostics::{LocatedError, did_you_mean};

/// The names a suite gives checks: each must be a check id or a bundle; `require` must name a
/// SHOULD check.
pub fn resolve_checks(suite: &Suite) -> Vec<LocatedError> {
    let mut errors = Vec::new();
    let unknown = |named: &Named| {
        let known = checks::known_names();
        let help = match did_you_mean(&named.name, known.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? (`oauth-harness checks` lists them all)"),
            None => "`oauth-harness checks` lists every check id and bundle".to_string(),
        };
        suite.source.error_at(named.span, format!("unknown check or bundle `{}`", named.name)).with_help(help)
    };
    for (named, _) in &suite.required {
        match checks::find(&named.name) {
            None => errors.push(unknown(named)),
            Some(c) if c.severity == Severity::Must => errors.push(
                suite
                    .source
                    .error_at(named.span, format!("`{}` is already a MUST check", c.id))
                    .with_help("`require` promotes SHOULD checks only"),
            ),
            Some(_) => {}
        }
    }
    for step in suite.cases.iter().flat_map(|c| &c.steps) {
        for named in &step.expect.checks {
            if checks::resolve(&named.name).is_none() {
                errors.push(unknown(named));
            }
        }
    }
    errors
}

/// Checks the suites' check names, and that every client the scenarios name exists in the
/// target and can authenticate as the step asks (no network).
pub fn preflight<'a>(
    cases: impl Iterator<Item = (&'a Suite, &'a Case)>,
    target: &Target,
) -> Result<(), Vec<LocatedError>> {
    let mut errors = Vec::new();
    let mut resolved: Vec<&str> = Vec::new();
    for (suite, case) in cases {
        if !resolved.contains(&suite.name.as_str()) {
            resolved.push(&suite.name);
            errors.extend(resolve_checks(suite));
        }
        for step in &case.steps {
            // A case gated on registration (`when: { registered: … }`) is skipped, with the reason,
            // on a target without the client it needs: that is the target's shape, not a typo.
            if !case.registered.is_empty() {
                break;
            }
            let suite_client = case.client.as_ref().or(suite.client.as_ref());
            // Which client the step acts as, and whether it must have one.
            let (named, needs_client) = match &step.action {
                Action::Token(t) => (t.client.as_ref().or(suite_client), true),
                Action::Resource(r) => {
                    let fetches = matches!(
                        r.bearer,
                        None | Some(BearerChoice::Fresh | BearerChoice::InsufficientScope | BearerChoice::Cached)
                    );
                    (suite_client, fetches)
                }
                // The caller of an introspection is never the suite's token client by default.
                Action::Introspect(i) => {
                    if i.client.is_none() && !target.clients.contains_key(DEFAULT_INTROSPECTION_CLIENT) {
                        errors.push(
                            suite
                                .source
                                .error_at(case.span, format!("case `{}` introspects without naming a client", case.id))
                                .with_help(format!(
                                    "name the caller (`introspect: {{ client: … }}`) or define a `{DEFAULT_INTROSPECTION_CLIENT}` client in the target"
                                )),
                        );
                    }
                    (i.client.as_ref(), false)
                }
                Action::Discovery(_) | Action::Revoke(_) | Action::Wait(_) => (suite_client, false),
                Action::Ciba(c) => (c.client.as_ref().or(suite_client), true),
                Action::Poll(p) => (p.client.as_ref().or(suite_client), false),
                Action::TokenExchange(t) => (t.client.as_ref().or(suite_client), false),
                Action::Tls(_) => (None, false),
                Action::RotateKey(_) => (suite_client, false),
                Action::Approve(_) => (None, false),
                Action::Mint(m) => (m.client.as_ref().or(suite_client), false),
            };
            let wants_assertion = matches!(&step.action, Action::Token(t) if t.auth == Some(AuthChoice::PrivateKeyJwt));
            match named {
                Some(named) if !target.clients.contains_key(&named.name) => {
                    errors.push(unknown_client(suite, target, named));
                }
                Some(named) if target.clients.get(&named.name).is_some_and(|c| c.unusable.is_some()) => {
                    let problem = target.clients.get(&named.name).and_then(|c| c.unusable.clone());
                    errors.extend(problem.map(|p| *p));
                }
                Some(named) if wants_assertion && target.clients.get(&named.name).is_some_and(|c| c.key.is_none()) => {
                    errors.push(
                        suite
                            .source
                            .error_at(
                                named.span,
                                format!("client `{}` has no private key for private_key_jwt", named.name),
                            )
                            .with_help("give the client a `private_key:` in the target file"),
                    );
                }
                None if needs_client => errors.push(
                    suite
                        .source
                        .error_at(case.span, format!("case `{}` needs a client", case.id))
                        .with_help("set `client:` on the suite, the case or the step"),
                ),
                _ => {}
            }
        }
    }
    // One error per place, even when several steps share the suite's client.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.location.clone()));
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn unknown_client(suite: &Suite, target: &Target, named: &Named) -> LocatedError {
    let names = target.client_names().collect::<Vec<_>>().join(", ");
    let help = match did_you_mean(&named.name, target.client_names()) {
        Some(best) => format!("did you mean `{best}`? The target ({}) defines: {names}", target.origin),
        None => format!("the target ({}) defines: {names}", target.origin),
    };
    suite
        .source
        .error_at(named.span, format!("unknown client `{}`: suite `{}` needs it", named.name, suite.name))
        .with_help(help)
}
