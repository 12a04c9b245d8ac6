//! The call: everything between a target's configuration and one [`Observation`].
//!
//! [`target`] turns flags, environment and files into a checked [`target::Target`];
//! [`probe::Prober`] makes the one POST to getToken over [`conn`] (TCP, [`tls`], and
//! HTTP/1.1 on the wire by [`h1`], or HTTP/2 by [`h2`] with `--http2`), checks the
//! answer with [`validate`] and yields an [`Observation`]. Every command is a scheduler plus a sink over this path; nothing
//! else talks to the target.
//! Passwords live in [`secret::Secret`] and leave it only to build the request body.

pub mod conn;
pub mod door;
mod fast;
pub mod h1;
pub mod h2;
pub mod keyed;
pub mod ledger;
pub mod observation;
pub mod phases;
pub mod probe;
pub mod secret;
pub mod target;
pub mod tls;
mod tls_error;
pub mod tls_version;
pub mod validate;

pub use observation::{Observation, Outcome, Outcomes, Step};
pub use phases::{Connection, Phases};
pub use probe::Prober;
