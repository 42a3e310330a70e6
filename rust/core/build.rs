//! Declares the update rules: every file in `src/rules/` (but `mod.rs`) is one optimizer's rule,
//! so adding a rule is adding its file. Writes `$OUT_DIR/rules.rs`, which `rules/mod.rs` includes:
//! `pub mod <file>;` for each, and `pub use <file>::<Type>;` for each type the file implements
//! `Rule` for.

use std::env;
use std::fmt::Write;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest.join("src").join("rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("src/rules is readable")
        .map(|entry| entry.expect("src/rules is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs") && !path.ends_with("mod.rs"))
        .collect();
    files.sort();
    let mut out = String::new();
    for path in files {
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name");
        let source = fs::read_to_string(&path).expect("a rule file is readable");
        // The path is absolute, since an included `mod` would be looked for beside the generated
        // file; Debug quoting escapes it as a string literal.
        writeln!(
            out,
            "#[path = {:?}]\npub mod {module};",
            path.display().to_string()
        )
        .unwrap();
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("impl Rule for ") {
                let name = rest.trim_end_matches(" {").trim();
                writeln!(out, "pub use {module}::{name};").unwrap();
            }
        }
    }
    let target = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("rules.rs");
    fs::write(target, out).expect("OUT_DIR is writeable");
}
