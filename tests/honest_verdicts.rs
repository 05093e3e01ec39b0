//! A verdict is earned: a step that checked nothing fails, a refusal is judged for its code and
//! not only for being a refusal, a case that expects nothing is refused, and credentials a server
//! echoes back leak into no output, in no encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

mod common;

use base64::Engine;
use common::{bin, code, stderr, stdout};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A server that answers discovery, and every other request with `token_answer`.
async fn server(token_answer: impl Respond + 'static) -> MockServer {
    let server = MockServer::builder().disable_request_recording().start().await;
    let doc = serde_json::json!({
        "issuer": server.uri(),
        "token_endpoint": format!("{}/token", server.uri()),
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    });
    Mock::given(wiremock::matchers::path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(doc))
        .mount(&server)
        .await;
    Mock::given(any()).respond_with(token_answer).mount(&server).await;
    server
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

async fn run(args: Vec<String>, env: Vec<(&'static str, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || bin().args(&args).envs(env).output().unwrap()).await.unwrap()
}

fn target(dir: &std::path::Path, server: &MockServer, secret: &str) -> String {
    write(
        dir,
        "target.yaml",
        &format!(
            "issuer: {}\nclients:\n  confidential: {{ client_id: canary-client, client_secret: \"{secret}\", auth: client_secret_basic, scope: implant }}\n",
            server.uri()
        ),
    )
}

const CASE: &str = "suite: honest\nclient: confidential\ncases:\n  - id: the-case\n    token: { auth: client_secret_basic, secret: wrong }\n";

#[tokio::test]
async fn a_step_whose_expected_checks_all_do_not_apply_checked_nothing_and_fails() {
    let server =
        server(ResponseTemplate::new(401).set_body_json(serde_json::json!({ "error": "invalid_client" }))).await;
    let dir = tempfile::tempdir().unwrap();
    let target = target(dir.path(), &server, "a-secret-value");
    // The success bundle on a refusal: every check says it does not apply.
    let suite = write(dir.path(), "s.yaml", &format!("{CASE}    expect: {{ checks: [token-response] }}\n"));
    let o = run(vec!["run".into(), suite, "--target".into(), target.clone()], vec![]).await;
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("harness.nothing-checked") && stdout(&o).contains("nothing was checked"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("not a success response (status 401)"), "the reasons are given: {}", stdout(&o));
    // The control: the same answer judged by the check that applies passes.
    let suite =
        write(dir.path(), "s2.yaml", &format!("{CASE}    expect: {{ checks: [rfc6749.5.2.invalid-client] }}\n"));
    let o = run(vec!["run".into(), suite, "--target".into(), target], vec![]).await;
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[tokio::test]
async fn an_empty_403_is_refused_but_not_refused_with_invalid_client() {
    let server = server(ResponseTemplate::new(403)).await;
    let dir = tempfile::tempdir().unwrap();
    let target = target(dir.path(), &server, "a-secret-value");
    let suite = write(
        dir.path(),
        "s.yaml",
        &format!("{CASE}    expect: {{ checks: [rfc6749.5.2.refused, rfc6749.5.2.invalid-client] }}\n"),
    );
    let json = dir.path().join("r.json");
    let o = run(
        vec!["run".into(), suite, "--target".into(), target, "--report-json".into(), json.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let checks = report["suites"][0]["cases"][0]["steps"][0]["checks"].as_array().unwrap().clone();
    let verdict = |id: &str| checks.iter().find(|c| c["id"] == id).map(|c| c["verdict"].as_str().unwrap().to_string());
    assert_eq!(verdict("rfc6749.5.2.refused").as_deref(), Some("pass"));
    assert_eq!(verdict("rfc6749.5.2.invalid-client").as_deref(), Some("fail"), "{checks:#?}");
}

#[tokio::test]
async fn a_case_that_expects_nothing_is_refused_before_any_traffic() {
    let dir = tempfile::tempdir().unwrap();
    for body in [CASE.to_string(), format!("{CASE}    expect: {{ checks: [] }}\n")] {
        let suite = write(dir.path(), "s.yaml", &body);
        for command in ["validate", "run"] {
            let o = run(vec![command.into(), suite.clone()], vec![]).await;
            assert_eq!(code(&o), 2, "{command}: {}{}", stdout(&o), stderr(&o));
            assert!(stderr(&o).contains("nothing"), "{}", stderr(&o));
        }
    }
}

/// Echoes the request back: its Authorization header and its form, in a token answer.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let authorization = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let body = String::from_utf8_lossy(&request.body).into_owned();
        ResponseTemplate::new(200)
            .insert_header("Cache-Control", "no-store")
            .insert_header("Pragma", "no-cache")
            .insert_header("X-Echo-Authorization", authorization)
            .set_body_json(serde_json::json!({
                "access_token": format!("tok-{}", body.len()), "token_type": "Bearer", "expires_in": 60,
                "echo": { "authorization": authorization, "body": body, "url_form": urlencode(authorization) },
                "error_description": format!("you sent {authorization}"),
            }))
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn echoed_credentials_leak_into_no_output_in_any_encoding() {
    let secret = "Echo:Canary%+/secret-7531";
    let server = server(Echo).await;
    let dir = tempfile::tempdir().unwrap();
    let target = write(
        dir.path(),
        "target.yaml",
        &format!(
            "issuer: {}\nclients:\n  confidential: {{ client_id: canary client, client_secret: \"${{env:CANARY}}\", auth: client_secret_basic, scope: implant }}\n",
            server.uri()
        ),
    );
    let suite = write(
        dir.path(),
        "s.yaml",
        "suite: echo\nclient: confidential\ncases:\n  - id: basic\n    token: { auth: client_secret_basic }\n    expect: { checks: [rfc6749.4.4.token-issued] }\n  - id: post\n    token: { auth: client_secret_post }\n    expect: { status: 200 }\n",
    );
    let files: Vec<(&str, std::path::PathBuf)> =
        ["junit", "json", "html", "md"].iter().map(|k| (*k, dir.path().join(format!("r.{k}")))).collect();
    let evidence = dir.path().join("evidence");
    let mut args = vec!["run".to_string(), suite, "--target".into(), target, "--verbose".into()];
    for (kind, path) in &files {
        args.push(format!("--report-{kind}"));
        args.push(path.to_str().unwrap().into());
    }
    args.extend(["--evidence".into(), evidence.to_str().unwrap().into()]);
    let o = run(args, vec![("CANARY", secret.to_string())]).await;
    assert!(code(&o) <= 1, "{}{}", stdout(&o), stderr(&o));

    let mut outputs = vec![("stdout".to_string(), stdout(&o)), ("stderr".to_string(), stderr(&o))];
    for (kind, path) in &files {
        outputs.push((kind.to_string(), std::fs::read_to_string(path).unwrap()));
    }
    for entry in walkdir(&evidence) {
        outputs.push((entry.display().to_string(), std::fs::read_to_string(&entry).unwrap_or_default()));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let form_pair = format!("{}:{}", urlencode("canary client"), urlencode(secret));
    let spellings = [
        secret.to_string(),
        urlencode(secret),
        b64.encode(format!("canary client:{secret}")),
        b64.encode(&form_pair),
        b64.encode(&form_pair).trim_end_matches('=').to_string(),
        urlencode(&b64.encode(&form_pair)),
        serde_json::to_string(secret).unwrap().trim_matches('"').to_string(),
    ];
    for (name, text) in &outputs {
        for s in &spellings {
            assert!(!text.contains(s.as_str()), "{name} holds the secret as `{s}`");
        }
    }
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walkdir(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn a_wrong_secret_is_random_and_nothing_like_the_real_one() {
    let server = MockServer::builder().start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({ "error": "invalid_client" })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let real = "the-Real-Secret-8812";
    let target = write(
        dir.path(),
        "t.yaml",
        &format!(
            "issuer: {uri}\ntoken_endpoint: {uri}/token\nclients:\n  confidential: {{ client_id: c1, client_secret: \"{real}\", scope: implant }}\n",
            uri = server.uri()
        ),
    );
    let suite = write(
        dir.path(),
        "s.yaml",
        "suite: wrong\nclient: confidential\ncases:\n  - id: basic\n    token: { auth: client_secret_basic, secret: wrong }\n    expect: { checks: [rfc6749.5.2.invalid-client] }\n  - id: post\n    token: { auth: client_secret_post, secret: wrong }\n    expect: { checks: [rfc6749.5.2.invalid-client] }\n",
    );
    let o = run(vec!["run".into(), suite, "--target".into(), target], vec![]).await;
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let requests = server.received_requests().await.unwrap();
    let mut sent = Vec::new();
    for r in requests.iter().filter(|r| r.url.path() == "/token") {
        if let Some(basic) =
            r.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
        {
            let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).unwrap()).unwrap();
            sent.push(decoded.split_once(':').unwrap().1.to_string());
        }
        if let Some((_, v)) = form_urlencoded::parse(&r.body).find(|(k, _)| k == "client_secret") {
            sent.push(v.into_owned());
        }
    }
    assert_eq!(sent.len(), 2, "{sent:?}");
    for s in &sent {
        assert!(!s.contains(real) && !real.contains(s.as_str()), "the wrong secret {s:?} is derived from the real one");
        assert!(s.len() >= 16, "random, not a short constant: {s:?}");
    }
    assert_ne!(sent[0], sent[1], "a fresh random value each time");
}
