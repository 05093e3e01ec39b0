//! Which cases may run side by side. A server may keep one pending CIBA request per client and
//! user and supersede the older one (CIBA Core does not forbid it), so cases whose CIBA requests
//! share a (client, login hint) pair share a lane, whatever `--jobs` says: in a lane, a case's
//! CIBA requests start once the previous case has polled its last (the runner overlaps what
//! comes after), so no verdict depends on scheduling. Cases that wait after their CIBA requests
//! (a `wait` step) go first in their lane, so the wait overlaps the others. Every other case is
//! a lane of its own — except a case that issues thousands of tokens (`mint`): a server with a
//! bounded token store would forget the tokens of cases running beside it, so such cases run
//! alone, after all the others.

use std::collections::HashMap;

use crate::model::target::Target;
use crate::model::{Action, Case, Suite};

/// A case to run: its suite's index, the suite, the case, and its place in the report.
pub type Planned<'a> = (usize, &'a Suite, &'a Case, usize);

/// The cases that must run alone (after the others), in order.
pub fn alone<'a>(planned: &[Planned<'a>]) -> Vec<Planned<'a>> {
    planned.iter().filter(|p| runs_alone(p.2)).cloned().collect()
}

fn runs_alone(case: &Case) -> bool {
    case.steps.iter().any(|s| matches!(s.action, Action::Mint(_)))
}

/// Groups the cases of `planned` that may run beside others into lanes (each in the given
/// order); lanes holding several cases come first, since they take longest.
pub fn lanes<'a>(planned: Vec<Planned<'a>>, target: &Target) -> Vec<Vec<Planned<'a>>> {
    let planned: Vec<Planned<'a>> = planned.into_iter().filter(|p| !runs_alone(p.2)).collect();
    // Union-find over cases: two cases sharing a pair end in one set.
    let mut parent: Vec<usize> = (0..planned.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with: HashMap<(String, String), usize> = HashMap::new();
    for (i, (_, suite, case, _)) in planned.iter().enumerate() {
        for pair in ciba_pairs(suite, case, target) {
            match first_with.get(&pair) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    first_with.insert(pair, i);
                }
            }
        }
    }
    let mut by_root: Vec<(usize, Vec<Planned<'a>>)> = Vec::new();
    for (i, p) in planned.into_iter().enumerate() {
        let r = root(&mut parent, i);
        match by_root.iter_mut().find(|(k, _)| *k == r) {
            Some((_, lane)) => lane.push(p),
            None => by_root.push((r, vec![p])),
        }
    }
    let mut lanes: Vec<Vec<Planned<'a>>> = by_root.into_iter().map(|(_, lane)| lane).collect();
    for lane in &mut lanes {
        lane.sort_by_key(|p| !p.2.steps.iter().any(|s| matches!(s.action, Action::Wait(_))));
    }
    lanes.sort_by_key(|lane| std::cmp::Reverse(lane.len()));
    lanes
}

/// A step that makes or uses a pending CIBA request (the lane holds its pair until the case's
/// last such step is done).
pub fn uses_ciba_request(action: &Action) -> bool {
    matches!(action, Action::Ciba(_) | Action::Poll(_) | Action::Approve(_))
}

/// The (client_id, login hint) pairs a case's CIBA requests use.
fn ciba_pairs(suite: &Suite, case: &Case, target: &Target) -> Vec<(String, String)> {
    case.steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Ciba(spec) => Some(spec),
            _ => None,
        })
        .map(|spec| {
            let client = spec.client.as_ref().or(case.client.as_ref()).or(suite.client.as_ref());
            let client_id =
                client.and_then(|n| target.clients.get(&n.name)).map(|c| c.client_id.clone()).unwrap_or_default();
            let role = spec.user.as_ref().map(|n| n.name.as_str()).unwrap_or("approves");
            let hint = target.ciba.users.get(role).cloned().unwrap_or_else(|| role.to_string());
            (client_id, hint)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_suite;
    use crate::support::diagnostics::SourceFile;

    const SUITE: &str = "suite: s\nclient: a\ncases:\n\
        - { id: a-approves-1, ciba: { user: approves }, expect: { checks: [ciba-auth-response] } }\n\
        - { id: token, token: {}, expect: { checks: [token-response] } }\n\
        - { id: a-approves-2, ciba: { user: approves }, expect: { checks: [ciba-auth-response] } }\n\
        - { id: b-approves, client: b, ciba: { user: approves }, expect: { checks: [ciba-auth-response] } }\n\
        - { id: a-denies, ciba: { user: denies }, expect: { checks: [ciba-auth-response] } }\n\
        - { id: a-alias, ciba: { user: alias }, expect: { checks: [ciba-auth-response] } }\n\
        - { id: many, steps: [ { token: {} }, { mint: { count: 10 } }, { introspect: {}, expect: { checks: [rfc7662.2.2.active] } } ] }\n";

    #[test]
    fn cases_sharing_a_client_and_login_hint_share_a_lane_and_keep_their_order() {
        let suite =
            parse_suite(&SourceFile::new(std::path::Path::new("s.yaml"), SUITE.to_string())).expect("valid suite");
        let mut target = crate::mock::psc::describe("https://127.0.0.1:1/realms/x");
        target.clients.insert("a".into(), target.clients["psc-client"].clone());
        target.clients.insert("b".into(), target.clients["psc-client-b"].clone());
        // Another behaviour name for the same professional is the same user to the server.
        let approves = target.ciba.users["approves"].clone();
        target.ciba.users.insert("alias".into(), approves);
        let planned: Vec<Planned<'_>> = suite.cases.iter().enumerate().map(|(i, c)| (0, &suite, c, i)).collect();
        assert_eq!(alone(&planned).iter().map(|p| p.2.id.as_str()).collect::<Vec<_>>(), ["many"]);
        let ids: Vec<Vec<&str>> =
            lanes(planned, &target).iter().map(|l| l.iter().map(|(_, _, c, _)| c.id.as_str()).collect()).collect();
        assert_eq!(
            ids,
            vec![vec!["a-approves-1", "a-approves-2", "a-alias"], vec!["token"], vec!["b-approves"], vec!["a-denies"]]
        );
    }

    #[test]
    fn a_case_that_waits_after_its_ciba_requests_goes_first_in_its_lane() {
        let text = "suite: s\nclient: a\ncases:\n\
            - { id: first, ciba: { user: approves }, expect: { checks: [ciba-auth-response] } }\n\
            - { id: waits, steps: [ { ciba: { user: approves } }, { poll: {}, expect: { checks: [ciba-token-response] } }, { wait: { until: expiry } } ] }\n";
        let suite =
            parse_suite(&SourceFile::new(std::path::Path::new("s.yaml"), text.to_string())).expect("valid suite");
        let mut target = crate::mock::psc::describe("https://127.0.0.1:1/realms/x");
        target.clients.insert("a".into(), target.clients["psc-client"].clone());
        let planned: Vec<Planned<'_>> = suite.cases.iter().enumerate().map(|(i, c)| (0, &suite, c, i)).collect();
        let ids: Vec<Vec<&str>> =
            lanes(planned, &target).iter().map(|l| l.iter().map(|(_, _, c, _)| c.id.as_str()).collect()).collect();
        assert_eq!(ids, vec![vec!["waits", "first"]]);
    }
}
