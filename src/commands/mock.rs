//! `oauth-harness mock …`: a built-in mock as a standalone server, until Ctrl-C.

use super::{Output, Plain};
use crate::cli::{MockArgs, MockCommand, PscMockArgs};
use crate::diagnostics::did_you_mean;
use crate::exit;
use crate::mock::{DefectSet, IdentityServerMock, identity_server};

pub async fn mock(which: MockCommand, out: Output) -> u8 {
    match which {
        MockCommand::IdentityServer(args) => identity_server_mock(args, out).await,
        MockCommand::Psc(args) => psc_mock(args, out).await,
    }
}

async fn psc_mock(args: PscMockArgs, out: Output) -> u8 {
    use crate::mock::psc::{self, Defect, PscMock};
    if args.list_defects {
        let width = Defect::ALL.iter().map(|d| d.name().len()).max().unwrap_or(0);
        for d in Defect::ALL {
            println!("{:width$}  {}", d.name(), d.rule());
        }
        return exit::SUCCESS;
    }
    let mut defects = Vec::new();
    for name in &args.defects {
        match Defect::from_name(name) {
            Some(d) => defects.push(d),
            None => {
                let help = match did_you_mean(name, Defect::ALL.iter().map(|d| d.name())) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "`--list-defects` lists them".into(),
                };
                out.error(&Plain::new(format!("the psc mock has no defect `{name}`")).help(help));
                return exit::INVALID_INPUT;
            }
        }
    }
    let mut config = psc::Config { defects: DefectSet::new(defects), ..Default::default() };
    if let Some(i) = args.interval {
        config.interval_secs = i.as_secs().max(1);
    }
    if let Some(e) = args.expires_in {
        config.expires_in_secs = e.as_secs().max(1);
    }
    let mock = match PscMock::start(config, args.port).await {
        Ok(m) => m,
        Err(e) => {
            out.error(&Plain::new(format!("cannot listen on 127.0.0.1:{}: {e}", args.port.unwrap_or(0))));
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
    if args.list_defects {
        let width = Defect::ALL.iter().map(|d| d.name().len()).max().unwrap_or(0);
        for d in Defect::ALL {
            println!("{:width$}  {}", d.name(), d.rule());
        }
        return exit::SUCCESS;
    }
    let mut defects = Vec::new();
    for name in &args.defects {
        match Defect::from_name(name) {
            Some(d) => defects.push(d),
            None => {
                let names = Defect::ALL.iter().map(|d| d.name());
                let help = match did_you_mean(name, names) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "`--list-defects` lists them".into(),
                };
                out.error(&Plain::new(format!("the identity-server mock has no defect `{name}`")).help(help));
                return exit::INVALID_INPUT;
            }
        }
    }
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
    let mock = match IdentityServerMock::start(config, args.port).await {
        Ok(m) => m,
        Err(e) => {
            out.error(&Plain::new(format!("cannot listen on 127.0.0.1:{}: {e}", args.port.unwrap_or(0))));
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
    let on: Vec<&str> = args.defects.iter().map(String::as_str).collect();
    if !on.is_empty() {
        println!("  defects:   {}", on.join(", "));
    }
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    exit::SUCCESS
}
