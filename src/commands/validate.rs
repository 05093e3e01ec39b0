//! `oauth-harness validate`: load everything, send nothing, report every problem.

use super::{Output, Plain};
use crate::cli::ValidateArgs;
use crate::exit;
use crate::load::profile;
use crate::run::preflight;
use crate::scenario::{self, Loaded};
use crate::target::Target;

pub fn validate(args: ValidateArgs, out: Output) -> u8 {
    let mut problems = 0;
    let loaded = match scenario::load_paths(&args.paths) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                out.error(e);
            }
            problems += errors.len();
            Vec::new()
        }
    };
    // Load profiles are validated whole too (thresholds included), as `load` would before traffic.
    let mut profiles = Vec::new();
    for item in &loaded {
        if let Loaded::LoadProfile(path) = item {
            match profile::load(path) {
                Ok(p) => profiles.push(p),
                Err(errors) => {
                    for e in &errors {
                        out.error(e);
                    }
                    problems += errors.len();
                }
            }
        }
    }
    if let Some(path) = &args.target {
        match Target::load(path) {
            Ok(target) => {
                for p in &profiles {
                    let errors = profile::check_against(p, &target);
                    for e in &errors {
                        out.error(e);
                    }
                    problems += errors.len();
                }
                let suites: Vec<&scenario::Suite> = loaded
                    .iter()
                    .filter_map(|l| match l {
                        Loaded::Suite(s) => Some(s.as_ref()),
                        Loaded::LoadProfile(_) => None,
                    })
                    .collect();
                if let Err(errors) =
                    preflight(suites.iter().flat_map(|s| s.cases.iter().map(move |c| (*s, c))), &target)
                {
                    for e in &errors {
                        out.error(e);
                    }
                    problems += errors.len();
                }
            }
            Err(errors) => {
                for e in &errors {
                    out.error(e);
                }
                problems += errors.len();
            }
        }
    }
    if problems > 0 {
        out.error(&Plain::new(format!("{problems} problem(s) found")));
        return exit::INVALID_INPUT;
    }
    let suites = loaded.iter().filter(|l| matches!(l, Loaded::Suite(_))).count();
    let cases: usize = loaded
        .iter()
        .map(|l| match l {
            Loaded::Suite(s) => s.cases.len(),
            Loaded::LoadProfile(_) => 0,
        })
        .sum();
    let profiles = loaded.len() - suites;
    println!("ok: {suites} suite(s), {cases} case(s), {profiles} load profile(s)");
    exit::SUCCESS
}
