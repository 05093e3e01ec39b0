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
    let cases: usize = suites.iter().map(|s| s.cases.len()).sum();
    let clients = if client_suites > 0 { format!(", {client_suites} client suite(s)") } else { String::new() };
    out.println(&format!(
        "ok: {} suite(s), {cases} case(s), {} load profile(s){clients}",
        suites.len(),
        profiles.len()
    ));
    Ok(Outcome::Passed)
}
