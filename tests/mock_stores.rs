//! The mocks' stores are bounded and fail closed: at its limit a store takes nothing new and
//! forgets nothing live — the mock answers 503 with `Retry-After` rather than let a replayed
//! assertion or a revoked token through, or lose a pending CIBA request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use oauth_harness::mock::identity_server::{Config, RESOURCE_PATH, builtin_key};
use oauth_harness::mock::psc::{self, PscMock};
use oauth_harness::model::DpopProof;
use oauth_harness::protocol::auth::assertion::{self, ASSERTION_TYPE, Claims, Mutation};
use oauth_harness::protocol::auth::dpop::{self, Bind};
use oauth_harness::support::clock::unix_now;
use oauth_harness::support::keys::{KeyAlg, KeyPair, KidStyle};

/// A token request of the `backend-rs384` client with a fresh assertion, or with `jti`.
async fn assertion_request(http: &reqwest::Client, token_endpoint: &str, jti: &str) -> reqwest::Response {
    let key = builtin_key("backend-rs384").unwrap();
    let claims =
        Claims { client_id: "smart-backend-rs384", audience: token_endpoint, now: unix_now(), jti: jti.into() };
    let jwt = assertion::build(&key, &claims, &Mutation::default());
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Patient.rs"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt.as_str()),
    ];
    http.post(token_endpoint).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn a_full_replay_cache_answers_503_and_still_refuses_every_replay() {
    let mock = common::start_mock(Config { store_limit: 3, ..Config::default() }).await;
    let token_endpoint = format!("{}/connect/token", mock.issuer());
    let http = reqwest::Client::new();
    for jti in ["a", "b", "c"] {
        assert_eq!(assertion_request(&http, &token_endpoint, jti).await.status(), 200, "{jti}");
    }
    let full = assertion_request(&http, &token_endpoint, "d").await;
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "1");
    let body: serde_json::Value = full.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // Full, the cache forgot none of the live jtis: a replay is refused as a replay.
    let replay = assertion_request(&http, &token_endpoint, "a").await;
    assert_eq!(replay.status(), 401);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error_description"], "this jti was already used", "{body}");
}

#[tokio::test]
async fn a_full_replay_cache_answers_503_to_dpop_proofs_at_the_token_endpoint_and_the_resource() {
    let mock = common::start_mock(Config { store_limit: 2, ..Config::default() }).await;
    let issuer = mock.issuer();
    let (token_endpoint, resource) = (format!("{issuer}/connect/token"), format!("{issuer}{RESOURCE_PATH}"));
    let http = reqwest::Client::new();
    let key = KeyPair::generate(KeyAlg::Es384, 0, KidStyle::Rfc7638).unwrap();
    let token_request = || {
        let (proof, _) = dpop::proof(&key, "POST", &token_endpoint, DpopProof::Good, Bind::default());
        let form = [("grant_type", "client_credentials"), ("scope", "implant")];
        let request = http.post(&token_endpoint).basic_auth("implant-vendor", Some("implant-vendor-secret"));
        request.header("DPoP", proof).form(&form).send()
    };
    let r = token_request().await.unwrap();
    assert_eq!(r.status(), 200, "the first proof is taken");
    let body: serde_json::Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let at_resource = || {
        let bind = Bind { access_token: Some(&token), nonce: None };
        let (proof, _) = dpop::proof(&key, "GET", &resource, DpopProof::Good, bind);
        http.get(&resource).header("Authorization", format!("DPoP {token}")).header("DPoP", proof).send()
    };
    assert_eq!(at_resource().await.unwrap().status(), 200, "the second proof fills the cache");

    let full = at_resource().await.unwrap();
    assert_eq!(full.status(), 503, "the resource cannot tell a replay: no 401 invalid_dpop_proof");
    assert_eq!(full.headers()["retry-after"], "1");
    let full = token_request().await.unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "1");
    let body: serde_json::Value = full.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

#[tokio::test]
async fn a_full_revocation_list_answers_503_and_the_token_stays_active() {
    let mock = common::start_mock(Config { store_limit: 2, ..Config::default() }).await;
    let issuer = mock.issuer();
    let http = reqwest::Client::new();
    let client = ("implant-vendor", Some("implant-vendor-secret"));
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let form = [("grant_type", "client_credentials"), ("scope", "implant")];
        let r = http.post(format!("{issuer}/connect/token")).basic_auth(client.0, client.1).form(&form);
        let body: serde_json::Value = r.send().await.unwrap().json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    let revoke = |token: &str| {
        let form = [("token", token.to_string())];
        http.post(format!("{issuer}/connect/revocation")).basic_auth(client.0, client.1).form(&form).send()
    };
    let active = |token: &str| {
        let form = [("token", token.to_string())];
        // As the resource server introspects, with its own credentials.
        let resource =
            http.post(format!("{issuer}/connect/introspect")).basic_auth("fhir-facade", Some("fhir-facade-secret"));
        let request = resource.form(&form);
        async move {
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            assert!(body["active"].is_boolean(), "{body}");
            body["active"] == true
        }
    };
    assert_eq!(revoke(&tokens[0]).await.unwrap().status(), 200);
    assert_eq!(revoke(&tokens[1]).await.unwrap().status(), 200);
    assert_eq!(revoke(&tokens[0]).await.unwrap().status(), 200, "revoked already: nothing new to hold");
    let full = revoke(&tokens[2]).await.unwrap();
    assert_eq!(full.status(), 503, "RFC 7009 §2.2.1");
    assert_eq!(full.headers()["retry-after"], "1");
    assert!(active(&tokens[2]).await, "a revocation answered 503 did not happen");
    assert!(!active(&tokens[0]).await && !active(&tokens[1]).await, "none of the revocations held was forgotten");
}

#[tokio::test]
async fn a_full_store_of_ciba_requests_answers_503_and_keeps_the_pending_ones() {
    let mock = PscMock::start(psc::Config { store_limit: 2, ..psc::Config::default() }, None).await.unwrap();
    let ca = std::fs::read(common::repo_path("fixtures/pki/ca.pem")).unwrap();
    let http =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()]).build().unwrap();
    let realm = format!("{}/protocol/openid-connect", mock.issuer());
    let client = ("harness-psc-secret-basic", Some(psc::SECRET_BASIC));
    let backchannel = || {
        let form = [
            ("scope", "openid scope_all"),
            ("login_hint", psc::USER_NEVER),
            ("acr_values", "eidas1"),
            ("binding_message", "42"),
            ("channel", "CARD"),
        ];
        http.post(format!("{realm}/ext/ciba/auth")).basic_auth(client.0, client.1).form(&form).send()
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = backchannel().await.unwrap();
        assert_eq!(r.status(), 200);
        ids.push(r.json::<serde_json::Value>().await.unwrap()["auth_req_id"].as_str().unwrap().to_string());
    }
    let full = backchannel().await.unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "1");
    // Both requests are still known: a poll is told to wait, not that the id is unknown.
    for id in &ids {
        let form = [("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", id.as_str())];
        let r = http.post(format!("{realm}/token")).basic_auth(client.0, client.1).form(&form).send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(matches!(body["error"].as_str(), Some("authorization_pending" | "slow_down")), "{body}");
    }
}
