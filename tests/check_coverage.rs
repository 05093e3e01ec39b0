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
    AuthUsed, CibaFacts, Exchange, RecordedRequest, RecordedResponse, RequestContext, TokenFacts,
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

/// A compact JWS with these claims (unsigned: the claim checks do not verify signatures).
fn jwt(claims: Value) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.sig", b64(json!({"alg": "ES384"})), b64(claims))
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

/// (check id, an answer that breaks the rule, an answer that keeps it).
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
                "jwks_uri": "https://as.example/jwks", "grant_types_supported": ["client_credentials"],
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
            "ciba.id-token.signature",
            id_token_answer(good_claims.clone(), Some(Err("bad signature".into()))),
            id_token_answer(good_claims.clone(), Some(Ok(()))),
        ),
        ("rfc6749.2.3.1.client-secret-basic", refused(), issued()),
        ("rfc6749.4.4.token-issued", refused(), issued()),
        ("rfc7523.2.2.private-key-jwt", refused(), issued()),
        ("smart.system-scopes", plain(400, json!({ "error": "invalid_scope" })), issued()),
        ("rfc6749.5.1.access-token", plain(200, json!({ "token_type": "Bearer" })), issued()),
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
        ("rfc6750.2.1.valid-token-accepted", plain(401, json!({})), plain(200, json!({}))),
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
        ("rfc7521.4.2.assertion-required", issued(), refused()),
        ("rfc7523.3.1.iss", issued(), refused()),
        ("rfc7523.3.5.nbf", issued(), refused()),
        ("smart.337.unknown-client", issued(), refused()),
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
            "rfc7662.2.2.optional-members",
            introspection(json!({ "active": true })),
            introspection(json!({ "active": true, "iat": 1_000, "token_type": "Bearer", "sub": "s", "iss": "i" })),
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
