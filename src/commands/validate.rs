//! `oauth-harness validate`: read everything, send nothing, report every problem — the same
//! rules `run` and `load` apply before any traffic, against the target given or, without one,
//! against the embedded mocks' clients.

use super::Output;
use crate::cli::ValidateArgs;
use crate::embedded::targets_for_validation;
use crate::exit::{Failure, Outcome};
use crate::input::{self, Input, InputError, InputErrors};
use crate::model::{Suite, Target};
use crate::run::preflight;
use crate::support::text::count;

pub fn validate(args: ValidateArgs, out: &Output) -> Result<Outcome, Failure> {
    let (inputs, mut problems) = input::read_inputs_all(&args.paths);
    let mut profiles = Vec::new();
    let mut client_suites = 0;
    for item in &inputs {
        match item {
            Input::LoadProfile(path) => match input::read_profile(path) {
                Ok(p) => profiles.push(p),
                Err(mut e) => problems.append(&mut e.0),
            },
            Input::ClientSuite(path) => match input::read_client_suite(path) {
                Ok(suite) => {
                    client_suites += 1;
                    problems.extend(crate::certify::preflight(&suite).into_iter().map(input::InputError::from));
                }
                Err(mut e) => problems.append(&mut e.0),
            },
            Input::Suite(_) => {}
        }
    }
    let suites: Vec<&Suite> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Suite(s) => Some(s.as_ref()),
            Input::LoadProfile(_) | Input::ClientSuite(_) => None,
        })
        .collect();
    // What each suite and profile runs against: the target given, or its system's embedded mock.
    let targets: Vec<(Option<&str>, Target)> = match &args.target {
        Some(path) => match input::read_target(path) {
            Ok(t) => vec![(None, t)],
            Err(mut e) => {
                problems.append(&mut e.0);
                Vec::new()
            }
        },
        None => targets_for_validation().into_iter().map(|(system, t)| (Some(system), t)).collect(),
    };
    for (system, target) in &targets {
        let cases = suites
            .iter()
            .filter(|s| system.is_none_or(|sys| s.system == sys))
            .flat_map(|s| s.cases.iter().map(move |c| (*s, c)));
        if let Err(errors) = preflight(cases, target) {
            problems.extend(errors.into_iter().map(InputError::from));
        }
        // Load profiles run against the Identity Server mock when no target is given.
        if system.is_none_or(|sys| sys == crate::mock::identity_server::NAME) {
            for p in &profiles {
                problems.extend(input::check_profile_against(p, target).into_iter().map(InputError::from));
            }
        }
    }
    if !problems.is_empty() {
        return Err(InputErrors(problems).into());
    }
    // A client of the user's target whose files do not load, that no case given uses: `run`
    // refuses a case that does, so say it now rather than on the day one does.
    if args.target.is_some() {
        for (_, target) in &targets {
            for (name, client) in &target.clients {
                if let Some(problem) = &client.unusable {
                    out.note(&format!(
                        "warning: {}: client `{name}` cannot be used: {} (no case given uses it; a run of one that does is refused)",
                        problem.location, problem.message
                    ));
                }
            }
        }
    }
    let cases: usize = suites.iter().map(|s| s.cases.len()).sum();
    let clients = if client_suites > 0 { format!(", {}", count(client_suites, "client suite")) } else { String::new() };
    out.println(&format!(
        "ok: {}, {}, {}{clients}",
        count(suites.len(), "suite"),
        count(cases, "case"),
        count(profiles.len(), "load profile")
    ));
    Ok(Outcome::Passed)
}
