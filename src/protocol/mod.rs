//! OAuth on the wire: sending and recording requests, client authentication, the request builders
//! of each flow, and the harness's own JWKS server.

pub mod auth;
pub mod exchange;
pub mod flows;
pub mod http;
pub mod jwks_server;
pub mod observation;
