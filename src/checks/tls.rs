//! The TLS floor (BCP 195, RFC 9325 §3.1.1): a token endpoint accepts TLS 1.2, should accept TLS
//! 1.3, and — where the deployment requires it — refuses anything below 1.3. The harness offers
//! each version alone; TLS 1.0 and 1.1 it cannot offer at all (rustls has neither), and the step
//! says so.

use super::{CheckDef, Severity, Verdict};
use crate::protocol::exchange::{Exchange, TlsFacts};

const RFC9325: &str = "https://www.rfc-editor.org/rfc/rfc9325#section-3.1.1";

pub const CHECKS: &[CheckDef] = &[
    CheckDef {
        id: "rfc9325.3.1.1.tls12",
        severity: Severity::Must,
        rule: "RFC 9325 §3.1.1",
        url: RFC9325,
        summary: "the token endpoint completes a TLS 1.2 handshake (unless the target requires 1.3)",
        evaluate: |x| match facts(x) {
            Err(na) => na,
            Ok(f) if f.tls13_required => Verdict::na("the target requires TLS 1.3 (`tls.minimum`)"),
            Ok(f) => accepted(&f.tls12, "TLS 1.2"),
        },
    },
    CheckDef {
        id: "rfc9325.3.1.1.tls13",
        severity: Severity::Should,
        rule: "RFC 9325 §3.1.1",
        url: RFC9325,
        summary: "the token endpoint completes a TLS 1.3 handshake",
        evaluate: |x| match facts(x) {
            Err(na) => na,
            Ok(f) => accepted(&f.tls13, "TLS 1.3"),
        },
    },
    CheckDef {
        id: "rfc9325.3.1.1.tls13-floor",
        severity: Severity::Must,
        rule: "RFC 9325 §3.1.1 (the target's `tls.minimum: \"1.3\"`)",
        url: RFC9325,
        summary: "where the target requires TLS 1.3, the token endpoint accepts 1.3 and refuses a TLS 1.2 handshake",
        evaluate: |x| match facts(x) {
            Err(na) => na,
            Ok(f) if !f.tls13_required => Verdict::na("the target does not require TLS 1.3"),
            Ok(f) => match (&f.tls13, &f.tls12) {
                (Err(why), _) => Verdict::fail("a TLS 1.3 handshake", format!("refused: {why}")),
                (Ok(()), Ok(())) => Verdict::fail("a TLS 1.2 handshake refused", "TLS 1.2 accepted"),
                (Ok(()), Err(_)) => Verdict::Pass,
            },
        },
    },
];

fn facts(x: &Exchange) -> Result<&TlsFacts, Verdict> {
    x.context.tls.as_ref().ok_or_else(|| Verdict::na("not a TLS probe"))
}

fn accepted(outcome: &Result<(), String>, version: &str) -> Verdict {
    match outcome {
        Ok(()) => Verdict::Pass,
        Err(why) => Verdict::fail(format!("a {version} handshake"), format!("refused: {why}")),
    }
}
