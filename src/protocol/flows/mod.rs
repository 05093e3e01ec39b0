//! Protocol clients: each builds the request for one kind of step, deviations included.

pub mod ciba;
pub mod discovery;
pub mod introspection;
pub mod resource;
pub mod token;
pub mod token_cache;
pub mod token_exchange;
