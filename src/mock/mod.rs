//! Built-in stateful mocks (wiremock), for developers without a server and for the harness's own
//! proof that it catches broken servers.

pub mod defects;
pub mod identity_server;
pub mod psc;
mod signing;
pub mod tls_front;

pub use defects::DefectSet;
pub use identity_server::IdentityServerMock;

/// The systems a suite can be for, each with its embedded mock.
pub const SYSTEMS: &[&str] = &[identity_server::NAME, psc::NAME];

/// Every defect name of every mock, for "did you mean".
pub fn all_defect_names() -> Vec<&'static str> {
    identity_server::Defect::ALL.iter().map(|d| d.name()).chain(psc::Defect::ALL.iter().map(|d| d.name())).collect()
}
