//! Links the release binary with the functions it runs packed together at the front of its
//! text (`tools/link/symbol-order.txt`, written by `tools/symbol-order.sh`). The kernel maps
//! a binary's code 64 KiB at a time around each page it runs, so with the functions in the
//! compiler's order most of the 13 MiB text ends up resident; packed, about what runs does.
//! See docs/engine.md (Memory). Release builds for x86-64 Linux only: they link with the
//! toolchain's LLD (Rust ≥ 1.90), which reads the file; names it lacks are skipped quietly,
//! so a stale file only costs memory, never a build.

fn main() {
    const ORDER: &str = "tools/link/symbol-order.txt";
    println!("cargo:rerun-if-changed={ORDER}");
    // `RELOADER_SYMBOL_ORDER=off` links in the compiler's order (to measure the difference).
    println!("cargo:rerun-if-env-changed=RELOADER_SYMBOL_ORDER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("RELOADER_SYMBOL_ORDER") != "off";
    if !wanted {
        return;
    }
    let path = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(ORDER);
    if !path.is_file() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=reloader=-Wl,--symbol-ordering-file={}",
        path.display()
    );
    println!("cargo:rustc-link-arg-bin=reloader=-Wl,--no-warn-symbol-ordering");
}
