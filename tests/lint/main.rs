//! `reloader lint`, end to end: the real binary over the corpus in `tests/lint/corpus/` (every
//! rule and message, broken YAML, stdin, `List`s, JSON, Helm output, renamed keys, the
//! repository's own examples and install manifests), compared byte for byte with the golden
//! outputs in `tests/lint/golden/`, in every output format; the SARIF output checked against
//! the SARIF 2.1.0 schema's rules; and every message compared with what the validating webhook
//! answers for the same object.
//!
//! After an intended change of output: `RELOADER_UPDATE_GOLDEN=1 cargo test --test lint`, then
//! review the diff of `tests/lint/golden/`.

mod golden;
mod sarif;
mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// What a run of the binary printed and how it exited.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs `reloader <args>` in the repository root, with `stdin` (a corpus file) if given.
pub fn reloader(args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reloader"));
    command
        .args(args)
        .current_dir(REPO)
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(match stdin {
        Some(file) => Stdio::from(std::fs::File::open(corpus(file)).expect("corpus file")),
        None => Stdio::null(),
    });
    let output = command.output().expect("running the reloader binary");
    Run {
        stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

pub fn corpus(name: &str) -> PathBuf {
    Path::new(REPO).join("tests/lint/corpus").join(name)
}
