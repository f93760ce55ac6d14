//! What the tests and the benchmarks share (a dev-dependency of the reloader package): the
//! cluster fixture ([`cluster`]), the real `helm` ([`helm_cli`]), the admission review the
//! benchmarks send ([`review`]) and the README's benchmark block ([`render`]). It needs nothing
//! of the reloader library; what of the fixture does (keyed stamps, webhook TLS) stays in
//! tests/cluster/support.rs.

// The review's managedFields are one deep `json!`.
#![recursion_limit = "512"]

pub mod cluster;
pub mod helm_cli;
pub mod render;
pub mod review;

use std::path::Path;

/// The repository's root (this crate is its `tests/support/`).
pub fn repo() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/support/ is two levels below the repository's root")
}
