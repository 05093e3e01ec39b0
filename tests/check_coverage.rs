//! Every check in the catalogue is shown to fail on a server that breaks its rule: by a mock
//! defect (tests/defects.rs), or here, by a crafted answer that breaks it — each next to one that
//! keeps it, so the check is also shown to pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::defect_tables::{EXPECTED, EXPECTED_PSC};
use oauth_harness::checks::{self, Verdict};
use oauth_harness::protocol::exchange::{
    AssertionFacts, AuthUsed, CibaFacts, Exchange, RecordedRequest, RecordedResponse, RequestContext, TlsFacts,
    TokenFacts,
};
use serde_json::{Value, json};

fn answer(status: u16, headers: &[(&str, &str)], body: Value, context: RequestContext) -> Exchange {
    let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    h.push(("content-type".into(), "application/json".into()));
    Exchange {
        request: RecordedRequest {
            method: "POST".into(),
            url: "https://as.example/x".into(),
            headers: vec![],
            body: None,
        },
        response: RecordedResponse::new(status, h, body.to_string().into_bytes(), false, Duration::ZERO),
        context,
    }
}

fn plain(status: u16, body: Value) -> Exchange {
    answer(status, &[], body, RequestContext::default())
}

/// The same answer to another request: a method, headers (`Authorization` values keep their
/// scheme, as recorded) and form parameters.
fn to(mut x: Exchange, method: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Exchange {
    x.request.method = method.into();
    x.request.headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        ser.append_pair(k, v);
    }
    x.request.body = Some(ser.finish());
    x
}

const BASIC: (&str, &str) = ("Authorization", "Basic [redacted sha256:00000000]");
const BEARER: (&str, &str) = ("Authorization", "Bearer [redacted sha256:00000000]");
const CC: (&str, &str) = ("grant_type", "client_credentials");
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A private_key_jwt request with these assertion claims (and the good header).
fn with_assertion(x: Exchange, claims: Value, scope: &str) -> Exchange {
    let mut x = to(
        x,
        "POST",
        &[],
        &[CC, ("scope", scope), ("client_assertion_type", JWT_BEARER), ("client_assertion", "[redacted sha256:1]")],
    );
    x.context.client_id = Some("client-a".into());
    x.context.assertion = Some(AssertionFacts {
        header: json!({ "alg": "RS384", "kid": "k1", "typ": "JWT" }).as_object().unwrap().clone(),
        claims: claims.as_object().unwrap().clone(),
        registered_kid: Some("k1".into()),
        token_endpoint: "https://as.example/token".into(),
        registered_alg: Some("RS384".into()),
        advertised_algs: Some(vec!["RS384".into(), "ES384".into()]),
    });
    x
}

fn good_assertion_claims() -> Value {
    let now = oauth_harness::support::clock::unix_now();
    json!({ "iss": "client-a", "sub": "client-a", "aud": "https://as.example/token", "exp": now + 300, "iat": now, "jti": "j1" })
}

/// A compact JWS with these claims (unsigned: the claim checks do not verify signatures).
fn jwt(claims: Value) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.sig", b64(json!({"alg": "ES384"})), b64(claims))
}

/// A token asked for resource `https://api.example/implant`, which the target says the server
/// maps to `implant-api`, whose JWT names `aud`.
fn mapped_aud_token(aud: &str) -> Exchange {
    let token = jwt(json!({ "aud": aud }));
    let resource = ("resource", "https://api.example/implant");
    let mut x =
        to(plain(200, json!({ "access_token": token, "token_type": "Bearer" })), "POST", &[BASIC], &[CC, resource]);
    x.context.mapped_audience = Some("implant-api".into());
    x
}

fn ciba_context(signature: Option<Result<(), String>>) -> RequestContext {
    RequestContext {
        ciba: Some(CibaFacts {
            client_id: "client-a".into(),
            issuer: "https://as.example/realms/x".into(),
            auth_req_id: "request-1".into(),
            id_token_signature: signature,
            ..CibaFacts::default()
        }),
        ..RequestContext::default()
    }
}

fn id_token_answer(claims: Value, signature: Option<Result<(), String>>) -> Exchange {
    answer(
        200,
        &[],
        json!({ "access_token": "a", "token_type": "Bearer", "id_token": jwt(claims) }),
        ciba_context(signature),
    )
}

fn introspection(body: Value) -> Exchange {
    let facts =
        TokenFacts { client_id: "client-a".into(), expires_in: Some(300), received_at: 1_000, ..TokenFacts::default() };
    answer(200, &[], body, RequestContext { subject: Some(facts), ..RequestContext::default() })
}

fn unknown_client(x: Exchange) -> Exchange {
    let mut x = with_assertion(x, json!({ "iss": "nobody", "sub": "nobody" }), "s");
    x.context.deviations.unknown_client = true;
    x
}

/// (check id, an answer that breaks the rule, an answer that keeps it).
/// A TLS probe's answer: which versions were accepted, and whether the target requires 1.3.
fn tls_probe(tls12: bool, tls13: bool, tls13_required: bool) -> Exchange {
    let outcome = |ok: bool| if ok { Ok(()) } else { Err("received fatal alert: ProtocolVersion".to_string()) };
    let tls = TlsFacts { tls12: outcome(tls12), tls13: outcome(tls13), tls13_required };
    answer(405, &[], json!({}), RequestContext { tls: Some(tls), ..RequestContext::default() })
}

fn crafted() -> Vec<(&'static str, Exchange, Exchange)> {
    let now = oauth_harness::support::clock::unix_now();
    let good_claims = json!({ "iss": "https://as.example/realms/x", "aud": "client-a", "exp": now + 60, "iat": now,
        "urn:openid:params:jwt:claim:auth_req_id": "request-1" });
    let refused = || plain(401, json!({ "error": "invalid_client" }));
    let issued = || plain(200, json!({ "access_token": "a", "token_type": "Bearer" }));
    let no_token = RequestContext { auth: Some(AuthUsed::None), ..RequestContext::default() };
    // Discovery documents: one good, one broken in every way the checks below look at.
    let good_doc = || {
        plain(
            200,
            json!({
                "issuer": "https://as.example", "token_endpoint": "https://as.example/token",
                "jwks_uri": "https://as.example/jwks", "response_types_supported": ["token"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["ES384"],
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["ES384"], "scopes_supported": ["system/*.rs"],
                "introspection_endpoint": "https://as.example/introspect",
                "capabilities": ["client-confidential-asymmetric"]
            }),
        )
    };
    let broken_doc = || {
        plain(
            200,
            json!({
                "issuer": "https://as.example", "token_endpoint": "http://as.example/token",
                "grant_types_supported": ["authorization_code"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256"]
            }),
        )
    };
    vec![
        ("oidc.discovery.required-members", broken_doc(), good_doc()),
        ("oidc.discovery.https-urls", broken_doc(), good_doc()),
        ("smart.discovery.client-credentials", broken_doc(), good_doc()),
        ("smart.discovery.signing-algs", broken_doc(), good_doc()),
        ("smart.discovery.scopes-supported", broken_doc(), good_doc()),
        ("smart.discovery.introspection-endpoint", broken_doc(), good_doc()),
        ("smart.discovery.token-endpoint", plain(200, json!({ "issuer": "https://as.example" })), good_doc()),
        (
            "ciba.4.backchannel-endpoint",
            plain(200, json!({ "issuer": "x" })),
            plain(200, json!({ "backchannel_authentication_endpoint": "https://as.example/bc" })),
        ),
        (
            "ciba.4.grant-type",
            plain(200, json!({ "grant_types_supported": ["refresh_token"] })),
            plain(200, json!({ "grant_types_supported": ["urn:openid:params:grant-type:ciba"] })),
        ),
        (
            "ciba.7.3.expires-in",
            plain(200, json!({ "auth_req_id": "x", "expires_in": 0 })),
            plain(200, json!({ "auth_req_id": "x", "expires_in": 120 })),
        ),
        (
            "ciba.id-token.auth-req-id",
            id_token_answer(json!({ "urn:openid:params:jwt:claim:auth_req_id": "request-2" }), None),
            id_token_answer(good_claims.clone(), None),
        ),
        (
            "ciba.id-token.claims",
            id_token_answer(json!({ "iss": "https://other.example", "exp": now + 60, "iat": now }), None),
            id_token_answer(good_claims.clone(), None),
        ),
        (
            // Expired before the request left: no slow answer explains it.
            "ciba.id-token.claims",
            id_token_answer(json!({ "iss": "https://as.example/realms/x", "exp": now - 5, "iat": now - 65 }), None),
            id_token_answer(good_claims.clone(), None),
        ),
        (
            "ciba.id-token.signature",
            id_token_answer(good_claims.clone(), Some(Err("bad signature".into()))),
            id_token_answer(good_claims.clone(), Some(Ok(()))),
        ),
        (
            "rfc6749.2.3.1.client-secret-basic",
            to(refused(), "POST", &[BASIC], &[CC]),
            to(issued(), "POST", &[BASIC], &[CC]),
        ),
        ("rfc6749.4.4.token-issued", to(refused(), "POST", &[BASIC], &[CC]), to(issued(), "POST", &[BASIC], &[CC])),
        (
            "rfc7523.2.2.private-key-jwt",
            with_assertion(refused(), good_assertion_claims(), "system/Patient.rs"),
            with_assertion(issued(), good_assertion_claims(), "system/Patient.rs"),
        ),
        (
            "smart.system-scopes",
            with_assertion(plain(400, json!({ "error": "invalid_scope" })), good_assertion_claims(), "system/*.read"),
            with_assertion(issued(), good_assertion_claims(), "system/*.read"),
        ),
        ("rfc6749.5.1.access-token", plain(200, json!({ "token_type": "Bearer" })), issued()),
        (
            "rfc6749.3.3.default-scope",
            to(issued(), "POST", &[BASIC], &[CC]),
            to(plain(400, json!({ "error": "invalid_scope" })), "POST", &[BASIC], &[CC]),
        ),
        (
            "rfc6749.5.1.expires-in-type",
            plain(200, json!({ "access_token": "a", "expires_in": "3600" })),
            plain(200, json!({ "access_token": "a", "expires_in": 3600 })),
        ),
        (
            "rfc6749.5.2.error-code-registered",
            plain(400, json!({ "error": "something_else" })),
            plain(400, json!({ "error": "invalid_request" })),
        ),
        (
            "rfc6749.5.2.error-status",
            plain(500, json!({ "error": "invalid_request" })),
            plain(400, json!({ "error": "invalid_request" })),
        ),
        (
            "rfc6750.2.1.valid-token-accepted",
            to(plain(401, json!({})), "GET", &[BEARER], &[]),
            to(plain(200, json!({})), "GET", &[BEARER], &[]),
        ),
        (
            "rfc6750.3.1.no-error-without-token",
            answer(
                401,
                &[("www-authenticate", r#"Bearer realm="api", error="invalid_token""#)],
                json!({}),
                no_token.clone(),
            ),
            answer(401, &[("www-authenticate", r#"Bearer realm="api""#)], json!({}), no_token),
        ),
        ("rfc7009.2.2.revocation-200", plain(400, json!({ "error": "invalid_request" })), plain(200, json!({}))),
        // RFC 8707 §2: a server may put another identifier for the resource in aud; the
        // target's resource.aud names it, and that identifier (not any other) keeps the rule.
        ("rfc8707.2.audience", mapped_aud_token("fhir-api"), mapped_aud_token("implant-api")),
        // §2.2.1: a server that does not revoke access tokens says so, and keeps the rule.
        (
            "rfc7009.2.2.revocation-200",
            plain(400, json!({ "error": "invalid_request" })),
            plain(400, json!({ "error": "unsupported_token_type" })),
        ),
        (
            "rfc7521.4.2.assertion-required",
            to(issued(), "POST", &[], &[CC, ("client_assertion_type", JWT_BEARER)]),
            to(refused(), "POST", &[], &[CC, ("client_assertion_type", JWT_BEARER)]),
        ),
        (
            "rfc7523.3.1.iss",
            with_assertion(issued(), json!({ "iss": "someone-else", "sub": "client-a" }), "s"),
            with_assertion(refused(), json!({ "iss": "someone-else", "sub": "client-a" }), "s"),
        ),
        (
            "rfc7523.3.5.nbf",
            with_assertion(issued(), json!({ "iss": "client-a", "nbf": now + 300 }), "s"),
            with_assertion(refused(), json!({ "iss": "client-a", "nbf": now + 300 }), "s"),
        ),
        ("smart.337.unknown-client", unknown_client(issued()), unknown_client(refused())),
        // A TLS 1.3-only server, where the target does not require 1.3 (tests/ciba.rs runs the
        // floor against the mock with and without `--tls13-only`).
        ("rfc9325.3.1.1.tls12", tls_probe(false, true, false), tls_probe(true, true, false)),
        ("rfc9325.3.1.1.tls13-floor", tls_probe(true, true, true), tls_probe(false, true, true)),
        ("rfc7662.2.2.active", plain(200, json!({ "active": false })), plain(200, json!({ "active": true }))),
        (
            "rfc7662.2.2.client-id",
            introspection(json!({ "active": true, "client_id": "client-b" })),
            introspection(json!({ "active": true, "client_id": "client-a" })),
        ),
        (
            "rfc7662.2.2.exp-matches-expires-in",
            introspection(json!({ "active": true, "exp": 5_000 })),
            introspection(json!({ "active": true, "exp": 1_300 })),
        ),
        (
            "smart.257.expires-in-max-300",
            plain(200, json!({ "access_token": "a", "expires_in": 3600 })),
            plain(200, json!({ "access_token": "a", "expires_in": 300 })),
        ),
    ]
}

#[test]
fn every_check_fails_on_a_server_that_breaks_its_rule() {
    let by_defect: BTreeSet<&str> =
        EXPECTED.iter().chain(EXPECTED_PSC).flat_map(|(_, checks)| checks.iter().copied()).collect();
    let cases = crafted();
    let by_crafting: BTreeSet<&str> = cases.iter().map(|(id, _, _)| *id).collect();
    let uncovered: Vec<&str> =
        checks::catalogue().map(|c| c.id).filter(|id| !by_defect.contains(id) && !by_crafting.contains(id)).collect();
    assert!(uncovered.is_empty(), "checks no test shows failing: {uncovered:?}");

    for (id, broken, good) in cases {
        let check = checks::find(id).unwrap_or_else(|| panic!("{id} is not in the catalogue"));
        let verdict = (check.evaluate)(&broken);
        assert!(matches!(verdict, Verdict::Fail { .. }), "{id} on a broken answer: {verdict:?}");
        assert_eq!((check.evaluate)(&good), Verdict::Pass, "{id} on a good answer");
    }
}

/// A check's name is true: on a request that is not the one its rule is about it fails, naming
/// what was sent — before, each of these passed.
#[test]
fn a_check_fails_on_a_request_it_is_not_about() {
    let issued = || plain(200, json!({ "access_token": "a", "token_type": "Bearer", "expires_in": 60 }));
    let invalid_client = || plain(401, json!({ "error": "invalid_client" }));
    let mut registered_credentials = to(invalid_client(), "POST", &[BASIC], &[CC]);
    registered_credentials.context.client_id = Some("client-a".into());
    let mut same_client_poll = plain(400, json!({ "error": "invalid_grant" }));
    same_client_poll.context.ciba =
        Some(CibaFacts { requested_by: "psc-client".into(), polled_by: "psc-client".into(), ..CibaFacts::default() });
    let never_revoked = RequestContext {
        subject: Some(TokenFacts { client_id: "client-a".into(), ..TokenFacts::default() }),
        ..RequestContext::default()
    };
    let cases: Vec<(&str, Exchange, &str)> = vec![
        ("rfc6749.2.3.1.client-secret-post", to(issued(), "POST", &[BASIC], &[CC]), "Authorization: Basic"),
        (
            "rfc6749.2.3.1.client-secret-basic",
            to(issued(), "POST", &[], &[CC, ("client_secret", "x")]),
            "client_secret in the form",
        ),
        ("rfc6749.3.2.post-only", to(invalid_client(), "POST", &[BASIC], &[CC]), "was a POST"),
        // A GET refused for its missing credentials proves nothing about GET.
        ("rfc6749.3.2.post-only", to(invalid_client(), "GET", &[], &[CC]), "carried none"),
        ("rfc6749.3.3.scope-order", to(issued(), "POST", &[BASIC], &[CC, ("scope", "implant")]), "asked for `implant`"),
        ("rfc7523.3.3.aud", with_assertion(invalid_client(), good_assertion_claims(), "s"), "sent an assertion"),
        ("rfc6749.5.2.invalid-client", registered_credentials, "own credentials"),
        ("rfc7009.2.revoked-inactive", answer(200, &[], json!({ "active": false }), never_revoked), "no step revoked"),
        ("ciba.11.other-client", same_client_poll, "polled as the requesting client"),
    ];
    for (id, exchange, named) in cases {
        let check = checks::find(id).unwrap();
        match (check.evaluate)(&exchange) {
            Verdict::Fail { expected, seen } => {
                assert!(expected.contains("what this check judges"), "{id}: {expected}");
                assert!(seen.contains(named), "{id} should say what was sent ({named}): {seen}");
            }
            other => panic!("{id} on a request it is not about: {other:?}"),
        }
    }
}

/// OIDC Discovery §4.3: the issuer is identical to the configured one; only the `/` a URL
/// parser adds to an empty path may differ.
#[test]
fn the_issuer_is_compared_exactly_but_for_an_empty_path() {
    let check = checks::find("oidc.discovery.issuer").unwrap();
    let verdict = |seen: &str, expected: &str| {
        let context = RequestContext { expected_issuer: Some(expected.into()), ..RequestContext::default() };
        (check.evaluate)(&answer(200, &[], json!({ "issuer": seen }), context))
    };
    assert_eq!(verdict("https://as.example", "https://as.example/"), Verdict::Pass);
    assert_eq!(verdict("https://as.example/realms/a", "https://as.example/realms/a"), Verdict::Pass);
    assert!(matches!(verdict("https://as.example/realms/a/", "https://as.example/realms/a"), Verdict::Fail { .. }));
    assert!(matches!(verdict("https://as.example/realms/a", "https://as.example/realms/a/"), Verdict::Fail { .. }));
}

/// A server's numbers at the ends of i64 are a wrong lifetime, judged like any other: never an
/// overflow (a panic in a debug build, a wrapped verdict in a release one).
#[test]
fn extreme_exp_and_iat_are_judged_not_overflowed() {
    let check = checks::find("rfc7519.exp-matches-expires-in").unwrap();
    let with = |exp: i64, iat: Option<i64>| {
        let mut claims = json!({ "exp": exp });
        if let Some(iat) = iat {
            claims["iat"] = json!(iat);
        }
        plain(200, json!({ "access_token": jwt(claims), "token_type": "Bearer", "expires_in": 3600 }))
    };
    let now = oauth_harness::support::clock::unix_now();
    assert_eq!((check.evaluate)(&with(now + 3600, Some(now))), Verdict::Pass);
    for (exp, iat) in [(i64::MAX, Some(i64::MIN)), (i64::MIN, Some(i64::MAX)), (i64::MIN, None), (i64::MAX, None)] {
        assert!(matches!((check.evaluate)(&with(exp, iat)), Verdict::Fail { .. }), "exp {exp}, iat {iat:?}");
    }
}
