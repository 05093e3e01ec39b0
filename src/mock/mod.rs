//! Built-in stateful mocks, for developers without a server and for the harness's own proof that
//! it catches broken servers. Each is a request handler served by `support::http_server`.

pub mod defects;
mod expiring;
pub mod identity_server;
pub mod psc;
mod signing;

pub use defects::DefectSet;
pub use identity_server::IdentityServerMock;

/// Every defect name of every mock, for "did you mean".
pub fn all_defect_names() -> Vec<&'static str> {
    identity_server::Defect::ALL.iter().map(|d| d.name()).chain(psc::Defect::ALL.iter().map(|d| d.name())).collect()
}
