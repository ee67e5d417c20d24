//! Background workers besides the reconciler. Each runs until its shutdown token is cancelled
//! and returns; an error return means the worker died and the server stops loudly.

mod pruner;
mod singleton;

pub use pruner::{PruneFailure, Pruner, PrunerConfig, SweepReport};
pub use singleton::{ELECTION_EVERY, run_singleton};
