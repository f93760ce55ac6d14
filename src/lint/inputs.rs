//! What `reloader lint` reads: files, directories (recursively: `.yaml`, `.yml` and `.json`
//! files, hidden entries skipped, in name order), and `-` for stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Input, InputError, STDIN};

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Reads every path; what cannot be read is an [`InputError`], and the rest is still read.
pub fn collect(paths: &[PathBuf], stdin: &mut dyn Read) -> (Vec<Input>, Vec<InputError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut stdin_read = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            let mut bytes = Vec::new();
            match stdin.read_to_end(&mut bytes) {
                Ok(_) => inputs.push(Input {
                    name: STDIN.into(),
                    bytes,
                }),
                Err(e) => errors.push(error(STDIN, format!("cannot read stdin: {e}"))),
            }
            continue;
        }
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files, &mut errors);
            if files.is_empty() {
                errors.push(error(
                    &display(path),
                    "no .yaml, .yml or .json files in this directory".into(),
                ));
            }
            for file in files {
                read(&file, &mut inputs, &mut errors);
            }
        } else {
            read(path, &mut inputs, &mut errors);
        }
    }
    (inputs, errors)
}

fn error(file: &str, message: String) -> InputError {
    InputError {
        file: file.into(),
        document: None,
        at: None,
        message,
    }
}

/// A path as reports show it: as given, with `/` separators and no leading `./`.
pub fn display(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let mut text = text.as_str();
    while let Some(rest) = text.strip_prefix("./") {
        text = rest;
    }
    text.to_string()
}

fn read(path: &Path, inputs: &mut Vec<Input>, errors: &mut Vec<InputError>) {
    match std::fs::read(path) {
        Ok(bytes) => inputs.push(Input {
            name: display(path),
            bytes,
        }),
        Err(e) => errors.push(error(&display(path), format!("cannot read: {e}"))),
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(error(&display(dir), format!("cannot read the directory: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        // Only real directories are entered: a symlink to a directory could loop.
        let real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if real_dir {
            walk(&path, files, errors);
        } else if path
            .extension()
            .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_walked_in_order_and_stdin_is_read_once() {
        let dir = std::env::temp_dir().join(format!("reloader-lint-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/.hidden")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        for f in [
            "a.yaml",
            "b/c.YML",
            "b/d.json",
            "b/e.txt",
            "b/.hidden/f.yaml",
            ".g.yaml",
        ] {
            std::fs::write(dir.join(f), "{}").unwrap();
        }
        let mut stdin = &b"kind: X"[..];
        let paths = vec![
            dir.clone(),
            PathBuf::from("-"),
            PathBuf::from("-"),
            dir.join("missing.yaml"),
            dir.join("empty"),
        ];
        let (inputs, errors) = collect(&paths, &mut stdin);
        let names: Vec<String> = inputs
            .iter()
            .map(|i| i.name.trim_start_matches(&display(&dir)).to_string())
            .collect();
        assert_eq!(names, ["/a.yaml", "/b/c.YML", "/b/d.json", STDIN]);
        assert_eq!(inputs[3].bytes, b"kind: X");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.starts_with("cannot read: "), "{errors:?}");
        assert!(errors[1].message.contains("no .yaml"), "{errors:?}");
        assert_eq!(display(Path::new("./././x/y.yaml")), "x/y.yaml");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
