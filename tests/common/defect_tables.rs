//! Each mock defect and the checks it must fail: shared by the defect test and the coverage test.

/// Defect → the check ids that must fail with it. Every listed defect must appear here.
pub const EXPECTED: &[(&str, &[&str])] = &[
    ("no-cache-headers", &["rfc6749.5.1.cache-control", "rfc6749.5.1.pragma"]),
    ("token-type-not-bearer", &["rfc6749.5.1.token-type"]),
    ("missing-expires-in", &["rfc6749.5.1.expires-in", "smart.token-response.expires-in"]),
    ("token-content-type-text", &["rfc6749.5.1.content-type"]),
    ("refresh-token-issued", &["rfc6749.4.4.3.no-refresh-token"]),
    ("omit-scope-when-different", &["rfc6749.3.3.default-scope", "rfc6749.5.1.scope-when-different"]),
    ("wrong-expires-in", &["rfc7519.exp-matches-expires-in", "rfc7662.2.2.exp-matches-jwt"]),
    ("invalid-client-400", &["rfc6749.5.2.invalid-client-401"]),
    ("basic-no-www-authenticate", &["rfc6749.5.2.www-authenticate"]),
    ("accept-wrong-secret", &["rfc6749.5.2.invalid-client", "rfc6749.5.2.refused"]),
    ("basic-not-form-decoded", &["rfc6749.2.3.1.form-encoded-credentials"]),
    ("client-secret-post-ignored", &["rfc6749.2.3.1.client-secret-post"]),
    ("accept-unregistered-method", &["rfc7591.2.unregistered-method"]),
    ("accept-two-auth-methods", &["rfc6749.2.3.single-auth-method"]),
    ("token-endpoint-accepts-get", &["rfc6749.3.2.post-only"]),
    ("ignore-scope-restriction", &["rfc6749.5.2.invalid-scope", "rfc6749.5.2.refused"]),
    ("scope-order-sensitive", &["rfc6749.3.3.scope-order"]),
    ("unsupported-grant-as-invalid-request", &["rfc6749.5.2.unsupported-grant-type"]),
    ("missing-grant-type-accepted", &["rfc6749.5.2.invalid-request", "rfc6749.5.2.refused"]),
    // An HTML error page keeps no "refused with <code> in a JSON body" rule: every code check of a
    // refusal fails with it (the bare refusal, a 4xx without a token, still holds).
    (
        "error-not-json",
        &[
            "rfc6749.2.3.single-auth-method",
            "rfc6749.5.2.error-json",
            "rfc6749.5.2.invalid-client",
            "rfc6749.5.2.invalid-request",
            "rfc6749.5.2.invalid-scope",
            "rfc6749.5.2.unsupported-grant-type",
            "rfc7521.4.2.assertion-required",
            "rfc7521.4.2.assertion-type",
            "rfc7523.3.1.iss",
            "rfc7523.3.2.sub",
            "rfc7523.3.3.aud",
            "rfc7523.3.4.exp",
            "rfc7523.3.5.nbf",
            "rfc7523.3.9.signature",
            "rfc7591.2.unregistered-method",
            "rfc8707.2.invalid-target",
            "rfc8725.3.1.alg-none",
            "rfc8725.3.1.hs256-confusion",
            "rfc8725.3.1.key-alg",
            "rfc8725.3.10.jku-refused",
            "rfc9449.11.1.replayed-proof",
            "rfc9449.4.3.invalid-proof",
            // The use_dpop_nonce answer cannot be read either: the nonce client gets no token.
            "rfc9449.5.token-type",
            "smart.324.signing-alg",
            "smart.330.jti-required",
            "smart.331.exp-max-5-min",
            "smart.336.jti-replay",
            "smart.337.unknown-client",
            "smart.338.key-lookup",
            "smart.jwks.retired-key",
        ],
    ),
    ("error-description-bad-charset", &["rfc6749.5.2.error-charset"]),
    ("resource-accepts-no-token", &["rfc6750.3.no-token"]),
    // RFC 6750 §3.1's invalid_token covers invalid, expired and revoked tokens alike.
    (
        "resource-invalid-token-no-error",
        &["rfc6750.3.1.expired-token", "rfc6750.3.1.invalid-token", "rfc7009.2.revoked-refused"],
    ),
    ("resource-ignores-scope", &["rfc6750.3.1.insufficient-scope"]),
    ("accept-wrong-aud", &["rfc6749.5.2.refused", "rfc7523.3.3.aud"]),
    ("accept-expired-assertion", &["rfc6749.5.2.refused", "rfc7523.3.4.exp"]),
    ("accept-long-exp", &["rfc6749.5.2.refused", "smart.331.exp-max-5-min"]),
    ("accept-replayed-jti", &["rfc6749.5.2.refused", "smart.336.jti-replay"]),
    ("accept-missing-jti", &["rfc6749.5.2.refused", "smart.330.jti-required"]),
    ("accept-sub-mismatch", &["rfc6749.5.2.refused", "rfc7523.3.2.sub"]),
    ("accept-alg-none", &["rfc6749.5.2.refused", "rfc8725.3.1.alg-none"]),
    ("accept-hs256-confusion", &["rfc6749.5.2.refused", "rfc8725.3.1.hs256-confusion"]),
    ("accept-unadvertised-alg", &["rfc6749.5.2.refused", "smart.324.signing-alg"]),
    ("accept-key-with-other-alg", &["rfc6749.5.2.refused", "rfc8725.3.1.key-alg"]),
    ("accept-bad-signature", &["rfc6749.5.2.refused", "rfc7523.3.9.signature"]),
    // A key the client's set does not hold is taken: the retired one too.
    ("accept-unregistered-key", &["rfc6749.5.2.refused", "smart.338.key-lookup", "smart.jwks.retired-key"]),
    ("follow-any-jku", &["rfc6749.5.2.refused", "rfc8725.3.10.jku-not-fetched", "rfc8725.3.10.jku-refused"]),
    ("accept-wrong-assertion-type", &["rfc6749.5.2.refused", "rfc7521.4.2.assertion-type"]),
    ("discovery-missing-private-key-jwt", &["smart.discovery.private-key-jwt"]),
    ("smart-config-html-for-browsers", &["smart.discovery.json"]),
    ("smart-config-no-asymmetric-capability", &["smart.discovery.asymmetric-capability"]),
    ("metadata-text-plain", &["rfc8414.3.served"]),
    ("metadata-no-response-types", &["rfc8414.2.required-members", "oidc.discovery.required-members"]),
    ("discovery-issuer-mismatch", &["oidc.discovery.issuer"]),
    // Judged on the openid-configuration step, which fetches RFC 8414's document beside it.
    ("rfc8414-issuer-mismatch", &["oidc.discovery.issuer"]),
    ("introspect-no-auth", &["rfc7662.2.1.no-credentials-401", "rfc7662.2.1.wrong-credentials-401"]),
    ("introspect-expired-active", &["rfc7662.4.expired-inactive"]),
    ("introspect-unknown-active", &["rfc7662.2.2.inactive"]),
    ("introspect-inactive-extra-fields", &["rfc7662.2.2.inactive-only-active"]),
    ("introspect-missing-exp", &["smart.introspection.exp"]),
    ("introspection-bearer-refused", &["smart.introspection.bearer-auth"]),
    ("introspect-wrong-scope", &["rfc7662.2.2.scope"]),
    ("evict-live-tokens", &["rfc6750.2.1.valid-token-accepted", "rfc7662.2.2.active"]),
    ("revocation-ignored", &["rfc7009.2.revoked-inactive", "rfc7009.2.revoked-refused"]),
    ("resource-accepts-expired", &["rfc6750.3.1.expired-token"]),
    // A token that names no resource is good at every resource, the one it was not asked for too.
    ("ignore-resource-parameter", &["rfc8707.2.audience", "rfc9068.4.other-audience-refused"]),
    ("accept-unknown-resource", &["rfc8707.2.invalid-target"]),
    ("access-token-typ-jwt", &["rfc9068.2.1.typ"]),
    // Without aud, the token names no resource either, and no resource can refuse it for another's.
    ("access-token-no-aud", &["rfc9068.2.2.claims", "rfc8707.2.audience", "rfc9068.4.other-audience-refused"]),
    ("resource-ignores-audience", &["rfc9068.4.other-audience-refused"]),
    ("access-token-sub-not-client", &["rfc9068.2.2.sub-client"]),
    ("introspection-jwt-ignored", &["rfc9701.5.content-type"]),
    ("introspection-jwt-typ-jwt", &["rfc9701.5.typ"]),
    ("introspection-jwt-unpublished-key", &["rfc9701.5.signature"]),
    ("introspection-jwt-no-aud", &["rfc9701.5.claims"]),
    ("introspection-jwt-wrong-iss", &["rfc9701.5.claims"]),
    // A server that ignores DPoP also takes every broken proof, and binds no token (the
    // introspection and resource checks of its tokens are blocked: no binding to judge).
    (
        "dpop-ignored",
        &["rfc9449.4.3.invalid-proof", "rfc9449.11.1.replayed-proof", "rfc9449.5.token-type", "rfc9449.6.cnf-jkt"],
    ),
    ("dpop-typ-unchecked", &["rfc9449.4.3.invalid-proof"]),
    ("dpop-private-jwk-accepted", &["rfc9449.4.3.invalid-proof"]),
    ("dpop-signature-unchecked", &["rfc9449.4.3.invalid-proof"]),
    ("dpop-htu-unchecked", &["rfc9449.4.3.invalid-proof"]),
    ("dpop-iat-unchecked", &["rfc9449.4.3.invalid-proof"]),
    ("dpop-replay-accepted", &["rfc9449.11.1.replayed-proof"]),
    // Without the nonce no client can follow: the token is never issued.
    ("dpop-nonce-without-header", &["rfc9449.8.nonce", "rfc9449.5.token-type"]),
    // Before, any retry answer but use_dpop_nonce passed: a server refusing every proof with
    // its nonce looked conformant.
    ("dpop-nonce-never-taken", &["rfc9449.8.nonce", "rfc9449.5.token-type"]),
    ("introspection-dpop-unbound", &["rfc9449.6.2.introspection"]),
    // A resource without the DPoP scheme refuses the good proof, and answers the broken ones with
    // a Bearer challenge, not a DPoP one.
    ("resource-dpop-unsupported", &["rfc9449.7.1.accepted", "rfc9449.7.1.proof-refused"]),
    ("resource-dpop-as-bearer", &["rfc9449.7.2.bearer-refused"]),
    ("resource-dpop-proof-unchecked", &["rfc9449.7.1.proof-refused"]),
    // A server that never refreshes takes neither the new key nor the retirement of the old.
    ("jwks-cached-forever", &["smart.jwks.new-key", "rfc6749.5.2.refused", "smart.jwks.retired-key"]),
    ("jwks-retired-key-kept", &["rfc6749.5.2.refused", "smart.jwks.retired-key"]),
    ("jwks-refetch-storm", &["smart.jwks.unknown-kid-fetches"]),
    ("access-token-unpublished-key", &["rfc9068.4.signature"]),
    // A load defect: which cases draw the one-in-ten 500 depends on scheduling, so any failing
    // set will do as long as it is not empty (tests/load.rs measures its rate).
    ("token-server-error-10pct", &[]),
];

/// Defects whose failing checks depend on request order: they must fail something.
pub const ANY_FAILURE: &[&str] = &["token-server-error-10pct"];

/// The PSC mock's defects and the checks each must fail.
pub const EXPECTED_PSC: &[(&str, &[&str])] = &[
    ("no-slow-down", &["ciba.11.slow-down"]),
    ("interval-missing", &["ciba.7.3.interval"]),
    // Tokens handed out early show wherever the user had not answered yet.
    (
        "token-before-approval",
        &[
            "ciba.10.1.id-token",
            "ciba.11.access-denied",
            "ciba.11.authorization-pending",
            "ciba.11.expired-token",
            "ciba.11.slow-down",
        ],
    ),
    ("reuse-auth-req-id", &["ciba.11.reused-auth-req-id", "rfc6749.5.2.refused"]),
    // The poll of the other client comes after the approval: it gets the tokens, so the refusal fails too.
    ("cross-client", &["rfc6749.5.2.refused", "ciba.11.other-client"]),
    ("no-expiry", &["ciba.11.expired-token"]),
    ("expired-too-early", &["ciba.11.expired-token"]),
    ("access-denied-as-pending", &["ciba.11.access-denied"]),
    ("id-token-wrong-aud", &["ciba.id-token.aud"]),
    // An unbound token: introspection names no binding either; the resource's binding checks are
    // blocked by rfc8705.3.cnf's finding.
    ("cnf-missing", &["rfc8705.3.2.introspection-cnf", "rfc8705.3.cnf"]),
    ("mtls-not-enforced", &["rfc6749.5.2.refused", "rfc8705.2.no-certificate"]),
    ("mtls-any-subject", &["rfc6749.5.2.refused", "rfc8705.2.subject-mismatch"]),
    ("two-hints-accepted", &["ciba.7.1.two-hints", "rfc6749.5.2.refused"]),
    ("openid-scope-optional", &["ciba.7.1.openid-scope", "rfc6749.5.2.refused"]),
    ("weak-auth-req-id", &["ciba.7.3.auth-req-id"]),
    ("discovery-no-poll-mode", &["ciba.4.poll-mode"]),
    ("cross-client-other-method", &["ciba.11.other-client"]),
    // The refused request of the private_key_jwt happy path leaves its poll without a request.
    (
        "assertion-aud-token-endpoint-only",
        &[
            "ciba.7.1.assertion-audience",
            "ciba.7.3.auth-req-id",
            "ciba.7.3.expires-in",
            "ciba.7.3.interval",
            "harness.precondition",
        ],
    ),
    ("unknown-user-accepted", &["ciba.13.unknown-user", "rfc6749.5.2.refused"]),
    ("ciba-ignore-scope-restriction", &["rfc6749.5.2.invalid-scope", "rfc6749.5.2.refused"]),
    // The token lives an hour whatever expires_in says: it is still exchanged after expires_in.
    (
        "ciba-wrong-expires-in",
        &["rfc7519.exp-matches-expires-in", "rfc6749.5.2.refused", "rfc8693.2.2.2.expired-subject-token"],
    ),
    ("resource-ignores-binding", &["rfc8705.3.resource-other-certificate", "rfc8705.3.resource-without-certificate"]),
    ("introspection-no-cnf", &["rfc8705.3.2.introspection-cnf"]),
    ("resource-accepts-id-token", &["rfc9068.4.id-token-refused"]),
    ("tls12-only", &["rfc9325.3.1.1.tls13"]),
    ("exchange-no-issued-token-type", &["rfc8693.2.2.1.response"]),
    ("exchange-unbound", &["rfc8693.2.2.1.certificate-bound"]),
    ("exchange-accepts-expired", &["rfc6749.5.2.refused", "rfc8693.2.2.2.expired-subject-token"]),
    ("exchange-any-token-type", &["rfc6749.5.2.refused", "rfc8693.2.2.2.subject-token-type"]),
    ("exchange-other-client", &["rfc6749.5.2.refused", "rfc8693.2.2.2.other-client"]),
];
