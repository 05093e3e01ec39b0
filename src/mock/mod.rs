//! Built-in stateful mocks (wiremock), for developers without a server and for the harness's own
//! proof that it catches broken servers.

pub mod defects;
pub mod embedded;
pub mod identity_server;
mod signing;

pub use defects::DefectSet;
pub use identity_server::IdentityServerMock;

/// Which mock owns a defect name; `None` when no mock has it.
pub fn owner_of(defect: &str) -> Option<&'static str> {
    identity_server::Defect::from_name(defect).map(|_| identity_server::NAME)
}

/// Every defect name of every mock, for "did you mean".
pub fn all_defect_names() -> Vec<&'static str> {
    identity_server::Defect::ALL.iter().map(|d| d.name()).collect()
}
