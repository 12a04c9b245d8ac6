//! Small shared utilities with no knowledge of the login call: parsers for human units,
//! a precise clock, the shutdown token, text formatting and file output. Everything
//! else may use these; they use nothing of the crate but each other.

pub mod clock;
pub mod exposition;
pub mod fmt;
pub mod fs;
pub mod net;
pub mod shutdown;
pub mod time;
pub mod units;
pub mod url;
