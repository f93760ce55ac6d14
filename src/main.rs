//! The `reloader` binary. The engine and the admission server are not wired yet (see the
//! README's status section); until they are, the binary says so instead of pretending to run.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "reloader {}: the reload engine and admission server are not implemented yet; \
         only the pure core (library) exists",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
