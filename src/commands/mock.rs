//! `oauth-harness mock …`: a built-in mock as a standalone server, until Ctrl-C.

use super::Output;
use crate::cli::{MockArgs, MockCommand, PscMockArgs};
use crate::exit::{Failure, Outcome};
use crate::mock::{DefectSet, IdentityServerMock, identity_server};

pub async fn mock(which: MockCommand, out: &Output) -> Result<Outcome, Failure> {
    match which {
        MockCommand::IdentityServer(args) => identity_server_mock(args, out).await,
        MockCommand::Psc(args) => psc_mock(args, out).await,
    }
}

fn cannot_listen(port: Option<u16>, e: std::io::Error) -> Failure {
    Failure::Start { what: "the mock", reason: format!("cannot listen on 127.0.0.1:{}: {e}", port.unwrap_or(0)) }
}

async fn psc_mock(args: PscMockArgs, out: &Output) -> Result<Outcome, Failure> {
    use crate::mock::psc::{self, Defect, PscMock};
    if args.common.list_defects {
        out.print(&Defect::listing());
        return Ok(Outcome::Passed);
    }
    let defects = Defect::parse_all(&args.common.defects)?;
    let mut config = psc::Config {
        defects: DefectSet::new(defects),
        one_pending_per_user: args.one_pending_per_user,
        tls13_only: args.tls13_only,
        mtls_endpoint_aliases: args.mtls_endpoint_aliases,
        ..Default::default()
    };
    if let Some(i) = args.interval {
        config.interval_secs = i.as_secs();
    }
    if let Some(e) = args.expires_in {
        config.expires_in_secs = e.as_secs();
    }
    if let Some(t) = args.token_lifetime {
        config.token_lifetime_secs = t.as_secs();
    }
    if let Some(limit) = args.common.store_limit {
        config.store_limit = limit as usize;
    }
    let mock = PscMock::start(config, args.common.port).await.map_err(|e| cannot_listen(args.common.port, e))?;
    let issuer = mock.issuer();
    out.println("psc mock listening (TLS; trust fixtures/pki/ca.pem, present a client certificate from fixtures/pki)");
    out.println(&format!("  issuer:      {issuer}"));
    out.println(&format!("  discovery:   {issuer}/.well-known/wallet-openid-configuration"));
    out.println(&format!("  backchannel: {issuer}/protocol/openid-connect/ext/ciba/auth"));
    out.println(&format!("  token:       {issuer}/protocol/openid-connect/token"));
    out.println(&format!("  approve:     POST {issuer}/test/ciba/{{auth_req_id}}/approve (or /deny)"));
    for c in psc::registered_clients() {
        out.println(&format!("  client {:19} client_id={} {}", c.name, c.client_id, c.credential()));
    }
    out.println(&format!(
        "  users: approves {}, denies {}, never answers {}, manual {}",
        psc::USER_APPROVES,
        psc::USER_DENIES,
        psc::USER_NEVER,
        psc::USER_MANUAL
    ));
    out.println("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    Ok(Outcome::Passed)
}

async fn identity_server_mock(args: MockArgs, out: &Output) -> Result<Outcome, Failure> {
    use identity_server::Defect;
    if args.common.list_defects {
        out.print(&Defect::listing());
        return Ok(Outcome::Passed);
    }
    let defects = Defect::parse_all(&args.common.defects)?;
    let mut config = identity_server::Config { defects: DefectSet::new(defects), ..Default::default() };
    if let Some(path) = &args.clients {
        config.clients = identity_server::from_file(path)?;
    }
    if let Some(ttl) = args.token_ttl {
        config.token_ttl_secs = ttl.as_secs();
    }
    if let Some(limit) = args.common.store_limit {
        config.store_limit = limit as usize;
    }
    let mock =
        IdentityServerMock::start(config, args.common.port).await.map_err(|e| cannot_listen(args.common.port, e))?;
    out.println("identity-server mock listening");
    out.println(&format!("  issuer:    {}", mock.issuer()));
    out.println(&format!("  discovery: {}/.well-known/openid-configuration", mock.issuer()));
    out.println(&format!("  resource:  {}{}", mock.issuer(), identity_server::RESOURCE_PATH));
    out.println("  clients (secrets are in the clients file; shown here by fingerprint):");
    for c in &mock.config().clients.clients {
        let methods: Vec<&str> = c.auth_methods.iter().map(|m| m.name()).collect();
        out.println(&format!(
            "    {:20} client_id={:?} auth={} scopes={} secret={}",
            c.name,
            c.client_id,
            methods.join(","),
            c.scopes.join(" "),
            crate::support::secret::fingerprint(&c.client_secret)
        ));
    }
    if !args.common.defects.is_empty() {
        out.println(&format!("  defects:   {}", args.common.defects.join(", ")));
    }
    out.println("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    Ok(Outcome::Passed)
}
