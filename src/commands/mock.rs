//! `oauth-harness mock …`: a built-in mock as a standalone server, until Ctrl-C.

use super::{Output, Plain};
use crate::cli::{MockArgs, MockCommand, PscMockArgs};
use crate::exit;
use crate::mock::defects::UnknownDefect;
use crate::mock::{DefectSet, IdentityServerMock, identity_server};

pub async fn mock(which: MockCommand, out: Output) -> u8 {
    match which {
        MockCommand::IdentityServer(args) => identity_server_mock(args, out).await,
        MockCommand::Psc(args) => psc_mock(args, out).await,
    }
}

/// Defects named on the command line, or the exit code after saying which is unknown.
fn defects_or_exit<D>(parsed: Result<Vec<D>, UnknownDefect>, mock: &str, out: Output) -> Result<Vec<D>, u8> {
    parsed.map_err(|e| {
        let help = match e.suggestion {
            Some(best) => format!("did you mean `{best}`?"),
            None => "`--list-defects` lists them".into(),
        };
        out.error(&Plain::new(format!("the {mock} mock has no defect `{}`", e.name)).help(help));
        exit::INVALID_INPUT
    })
}

async fn psc_mock(args: PscMockArgs, out: Output) -> u8 {
    use crate::mock::psc::{self, Defect, PscMock};
    if args.common.list_defects {
        print!("{}", Defect::listing());
        return exit::SUCCESS;
    }
    let defects = match defects_or_exit(Defect::parse_all(&args.common.defects), psc::NAME, out) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut config = psc::Config { defects: DefectSet::new(defects), ..Default::default() };
    if let Some(i) = args.interval {
        config.interval_secs = i.as_secs().max(1);
    }
    if let Some(e) = args.expires_in {
        config.expires_in_secs = e.as_secs().max(1);
    }
    let mock = match PscMock::start(config, args.common.port).await {
        Ok(m) => m,
        Err(e) => {
            out.error(&Plain::new(format!("cannot listen on 127.0.0.1:{}: {e}", args.common.port.unwrap_or(0))));
            return exit::RUNTIME_ERROR;
        }
    };
    let issuer = mock.issuer();
    println!("psc mock listening (TLS; trust fixtures/pki/ca.pem, present a client certificate from fixtures/pki)");
    println!("  issuer:      {issuer}");
    println!("  discovery:   {issuer}/.well-known/wallet-openid-configuration");
    println!("  backchannel: {issuer}/protocol/openid-connect/ext/ciba/auth");
    println!("  token:       {issuer}/protocol/openid-connect/token");
    println!("  approve:     POST {issuer}/test/ciba/{{auth_req_id}}/approve (or /deny)");
    for c in psc::registered_clients() {
        println!("  client {:14} client_id={} certificate subject: {}", c.name, c.client_id, c.subject);
    }
    println!(
        "  users: approves {}, denies {}, never answers {}, manual {}",
        psc::USER_APPROVES,
        psc::USER_DENIES,
        psc::USER_NEVER,
        psc::USER_MANUAL
    );
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    exit::SUCCESS
}

async fn identity_server_mock(args: MockArgs, out: Output) -> u8 {
    use identity_server::Defect;
    if args.common.list_defects {
        print!("{}", Defect::listing());
        return exit::SUCCESS;
    }
    let defects = match defects_or_exit(Defect::parse_all(&args.common.defects), identity_server::NAME, out) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut config = identity_server::Config { defects: DefectSet::new(defects), ..Default::default() };
    if let Some(path) = &args.clients {
        match identity_server::MockClients::load(path) {
            Ok(c) => config.clients = c,
            Err(e) => {
                out.error(&e);
                return exit::INVALID_INPUT;
            }
        }
    }
    if let Some(ttl) = args.token_ttl {
        config.token_ttl_secs = ttl.as_secs().max(1);
    }
    let mock = match IdentityServerMock::start(config, args.common.port).await {
        Ok(m) => m,
        Err(e) => {
            out.error(&Plain::new(format!("cannot listen on 127.0.0.1:{}: {e}", args.common.port.unwrap_or(0))));
            return exit::RUNTIME_ERROR;
        }
    };
    println!("identity-server mock listening");
    println!("  issuer:    {}", mock.issuer());
    println!("  discovery: {}/.well-known/openid-configuration", mock.issuer());
    println!("  resource:  {}{}", mock.issuer(), identity_server::RESOURCE_PATH);
    println!("  clients (secrets are in the clients file; shown here by fingerprint):");
    for c in &mock.config().clients.clients {
        println!(
            "    {:20} client_id={:?} auth={} scopes={} secret={}",
            c.name,
            c.client_id,
            c.auth_methods.join(","),
            c.scopes.join(" "),
            crate::secret::fingerprint(&c.client_secret)
        );
    }
    let on: Vec<&str> = args.common.defects.iter().map(String::as_str).collect();
    if !on.is_empty() {
        println!("  defects:   {}", on.join(", "));
    }
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    exit::SUCCESS
}
