//! Helpers for the unit tests: one argument parser and (on [`crate::call::Observation`])
//! one observation builder, so tests of every module build their inputs one way.

/// Parses `argv` (without a program name) into any flattened set of flags, as the
/// command line would.
pub fn args<A: clap::Args + clap::FromArgMatches>(argv: &[&str]) -> Result<A, clap::Error> {
    #[derive(clap::Parser)]
    struct Cmd<A: clap::Args + clap::FromArgMatches> {
        #[command(flatten)]
        flags: A,
    }
    let argv = std::iter::once("nehr-probe").chain(argv.iter().copied());
    <Cmd<A> as clap::Parser>::try_parse_from(argv).map(|c| c.flags)
}
