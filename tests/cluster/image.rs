//! The image `make image` builds (tools/image.sh; its OCI archive, target/image/reloader.tar or
//! `RELOADER_IMAGE_ARCHIVE`): its configuration (user, entrypoint, labels), its filesystem (one
//! static binary, CA roots, passwd/group; no shell), its size; then the binary taken out of the
//! image's layers runs against the control plane and reloads a workload.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
use crate::support::{Reloader, unique_name};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Unpacked image: its config and its root filesystem.
struct Unpacked {
    dir: PathBuf,
    config: Value,
    rootfs: PathBuf,
    compressed: u64,
}

impl Drop for Unpacked {
    /// 30 MB per run: gone with the test, so repeated runs do not fill the disk.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap();
    dir.join("blobs").join(algo).join(hex)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn unpack(archive: &Path) -> Unpacked {
    let dir = Path::new(REPO).join("target").join(unique_name("image-unpacked"));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let tar = |args: &[&str]| {
        let ok = Command::new("tar").args(args).status().expect("tar").success();
        assert!(ok, "tar {args:?}");
    };
    tar(&["-xf", archive.to_str().unwrap(), "-C", dir.to_str().unwrap()]);
    let index = read_json(&dir.join("index.json"));
    let manifest = read_json(&blob(&dir, index["manifests"][0]["digest"].as_str().unwrap()));
    let config = read_json(&blob(&dir, manifest["config"]["digest"].as_str().unwrap()));
    let mut compressed = 0;
    for layer in manifest["layers"].as_array().unwrap() {
        compressed += layer["size"].as_u64().unwrap();
        let path = blob(&dir, layer["digest"].as_str().unwrap());
        // GNU tar detects the layer's compression (gzip, zstd or none) by itself.
        tar(&["-xf", path.to_str().unwrap(), "-C", rootfs.to_str().unwrap()]);
    }
    Unpacked {
        dir,
        config,
        rootfs,
        compressed,
    }
}

/// Every regular file under `root`, relative, sorted.
fn files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Whether an ELF executable asks for a dynamic loader (a PT_INTERP program header).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

#[tokio::test]
async fn the_image_is_one_static_binary_run_as_non_root_and_it_reloads() {
    let archive = std::env::var("RELOADER_IMAGE_ARCHIVE")
        .map_or_else(|_| Path::new(REPO).join("target/image/reloader.tar"), PathBuf::from);
    assert!(
        archive.exists(),
        "no image archive at {}: run `make image` first (make test does)",
        archive.display()
    );
    let image = unpack(&archive);
    let config = &image.config["config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/reloader"]));
    assert!(config["Cmd"].as_array().is_none_or(|c| c.is_empty()), "{config}");
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "reloader");
    assert_eq!(labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(image.config["os"], "linux");

    // Nothing but the binary, the CA roots and the user database: no shell, no libc.
    assert_eq!(
        files(&image.rootfs),
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "reloader"
        ]
    );
    let passwd = std::fs::read_to_string(image.rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    let roots = std::fs::read_to_string(image.rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(roots.matches("BEGIN CERTIFICATE").count() > 50, "CA roots missing");
    let binary = image.rootfs.join("reloader");
    let bytes = std::fs::read(&binary).unwrap();
    assert!(!has_interpreter(&bytes), "the binary is dynamically linked");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777, 0o755);
    let unpacked: u64 = bytes.len() as u64;
    eprintln!(
        "image: {:.1} MiB compressed, binary {:.1} MiB",
        image.compressed as f64 / 1048576.0,
        unpacked as f64 / 1048576.0
    );
    assert!(
        image.compressed < 20 * 1024 * 1024,
        "image over 20 MiB: {}",
        image.compressed
    );
    assert!(unpacked < 40 * 1024 * 1024, "binary over 40 MiB: {unpacked}");

    // The binary from the image, against the control plane.
    let f = Fixture::new("image").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let reloader = Reloader::start_binary(
        &binary,
        crate::support::kubeconfig(),
        &[format!("--namespaces={}", f.ns.name), "--coalesce-window=300ms".into()],
        &[],
    );
    reloader.wait_ready().await;
    f.wait_acknowledged("app").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("app", 2).await;
    assert_eq!(reloader.metric("reloader_reload_executed_total{success=\"true\"}"), 1.0);
}
