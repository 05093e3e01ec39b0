//! The table of step actions. Everything that names actions comes from it: the model's
//! [`Action`] enum, the "exactly one action a step" rule and its did-you-mean hints (the input
//! layer reads the names here), the help texts of `run` and `validate`, and the docs' index.

use super::spec::{
    ApproveSpec, CibaSpec, DiscoverySpec, IntrospectSpec, MintSpec, PollSpec, ResourceSpec, RevokeSpec, RotateKeySpec,
    TlsSpec, TokenExchangeSpec, TokenSpec, WaitSpec,
};

/// One row of the table, as help texts and docs show it.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    pub kind: ActionKind,
    /// The YAML key.
    pub name: &'static str,
    /// One line: what the step does.
    pub summary: &'static str,
}

macro_rules! actions {
    ($( $variant:ident ( $spec:ty ) = $name:literal : $summary:literal ; )+) => {
        /// A validated step action.
        #[derive(Debug)]
        pub enum Action { $( $variant($spec), )+ }

        /// Which action, without its parameters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ActionKind { $( $variant, )+ }

        /// Every action, in the order the docs list them.
        pub const ACTIONS: &[ActionInfo] = &[ $( ActionInfo { kind: ActionKind::$variant, name: $name, summary: $summary }, )+ ];

        impl Action {
            pub fn kind(&self) -> ActionKind {
                match self { $( Action::$variant(_) => ActionKind::$variant, )+ }
            }
        }
    };
}

actions! {
    Token(Box<TokenSpec>) = "token": "a token request: the good client_credentials request plus the deviations it names";
    Resource(ResourceSpec) = "resource": "a call to the protected resource with a bearer token";
    Discovery(DiscoverySpec) = "discovery": "fetch a metadata document (openid-configuration, smart-configuration, the CIBA one)";
    Introspect(IntrospectSpec) = "introspect": "ask the introspection endpoint about a token (RFC 7662)";
    Revoke(RevokeSpec) = "revoke": "revoke the case's token as the client it was issued to (RFC 7009)";
    Wait(WaitSpec) = "wait": "sleep until the case's tokens have expired (bounded by `max`)";
    Mint(MintSpec) = "mint": "issue many more tokens (not judged), so later steps see the case's token outlive them";
    Ciba(CibaSpec) = "ciba": "a CIBA backchannel authentication request (CIBA §7.1)";
    Poll(PollSpec) = "poll": "poll the token endpoint for the case's CIBA request (CIBA §10.1, §11)";
    Approve(ApproveSpec) = "approve": "play the professional: approve the case's CIBA request through the target's hook";
    RotateKey(RotateKeySpec) = "rotate_key": "change the client's JWKS the harness serves (a new key beside the old, then alone) and wait out its max-age";
    Tls(TlsSpec) = "tls": "probe the TLS versions the token endpoint accepts: 1.2 and 1.3 (RFC 9325; 1.0 and 1.1 cannot be offered)";
    TokenExchange(TokenExchangeSpec) = "token_exchange": "exchange the case's access token at the target's token-exchange endpoint (RFC 8693)";
}

impl ActionKind {
    pub fn info(self) -> &'static ActionInfo {
        ACTIONS.iter().find(|a| a.kind == self).unwrap_or_else(|| unreachable!("every kind is in the table"))
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Whether the step has an answer of the server's that an `expect` can judge: waiting,
    /// minting, approving and rotating a key send nothing to judge (an `expect` on one would be
    /// a verdict never earned, so the input layer refuses it).
    pub fn is_judged(self) -> bool {
        !matches!(self, ActionKind::Wait | ActionKind::Mint | ActionKind::Approve | ActionKind::RotateKey)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        ACTIONS.iter().find(|a| a.name == name).map(|a| a.kind)
    }
}

/// Every action name, for "did you mean" and for "one of …" lists.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|a| a.name)
}

/// The actions as help texts list them: one a line, name and summary.
pub fn actions_help() -> String {
    let width = ACTIONS.iter().map(|a| a.name.len()).max().unwrap_or(0);
    ACTIONS.iter().map(|a| format!("  {:width$}  {}\n", a.name, a.summary)).collect()
}
