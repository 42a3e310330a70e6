//! Records how the extension was built, for `optrs info` (`_core.build_info()`): the git revision
//! of the sources, the compiler, the profile, and the target features every path may assume (the
//! baseline: wider SIMD is picked at run time, see optrs-core's `simd.rs`). And declares the
//! optimizers' bindings: every file in `src/optim/` (but `mod.rs`) is one optimizer's, so adding
//! one is adding its file (`optimizers` below).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    optimizers(&manifest);
    set("OPTRS_GIT_REVISION", &git_revision(&manifest));
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    set(
        "OPTRS_RUSTC_VERSION",
        &output(Command::new(rustc).arg("--version")).unwrap_or_else(|| "unknown".into()),
    );
    let var = |name: &str| env::var(name).unwrap_or_default();
    // LTO and codegen units are not passed to build scripts; an environment override of the
    // profile is (the quick development build uses one), so name it, or say it is Cargo.toml's.
    let profile = var("PROFILE");
    let overrides: Vec<String> = ["LTO", "CODEGEN_UNITS"]
        .iter()
        .map(|field| format!("CARGO_PROFILE_{}_{field}", profile.to_uppercase()))
        .filter_map(|name| env::var(&name).ok().map(|value| format!("{name}={value}")))
        .collect();
    let lto = if overrides.is_empty() {
        "LTO as Cargo.toml's profile".to_string()
    } else {
        overrides.join(" ")
    };
    set(
        "OPTRS_PROFILE",
        &format!("{profile} (opt-level {}, {lto})", var("OPT_LEVEL")),
    );
    for name in [
        "CARGO_PROFILE_RELEASE_LTO",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
    ] {
        println!("cargo:rerun-if-env-changed={name}");
    }
    set("OPTRS_TARGET", &var("TARGET"));
    set(
        "OPTRS_TARGET_FEATURES",
        &var("CARGO_CFG_TARGET_FEATURE").replace(',', " "),
    );
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS").replace('\x1f', " ");
    set(
        "OPTRS_RUSTFLAGS",
        if rustflags.is_empty() {
            "none"
        } else {
            &rustflags
        },
    );
    println!("cargo:rerun-if-env-changed=OPTRS_GIT_REVISION");
}

/// Writes `$OUT_DIR/optim.rs`, which `src/optim/mod.rs` includes: `pub mod <file>;` for each file
/// of `src/optim/`, and `register`, which adds each engine class the files define with
/// `engine_class!` to the extension module.
fn optimizers(manifest: &Path) {
    let dir = manifest.join("src").join("optim");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("src/optim is readable")
        .map(|entry| entry.expect("src/optim is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs") && !path.ends_with("mod.rs"))
        .collect();
    files.sort();
    let mut modules = String::new();
    let mut classes = String::new();
    for path in files {
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name");
        // Absolute: an included `mod` would be looked for beside the generated file.
        modules += &format!(
            "#[path = {:?}]\npub mod {module};\n",
            path.display().to_string()
        );
        let source = fs::read_to_string(&path).expect("a binding file is readable");
        // Each `engine_class!(Class, ...)` at the start of a line (rustfmt may break after the
        // parenthesis).
        for (at, _) in source.match_indices("\nengine_class!(") {
            let rest = &source[at + "\nengine_class!(".len()..];
            let class = rest.split(',').next().expect("engine_class!(Class, ...)");
            classes += &format!("    m.add_class::<{module}::{}>()?;\n", class.trim());
        }
    }
    let out = format!(
        "{modules}\n/// Adds every optimizer's engine class to the extension module.\n\
         pub fn register(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {{\n\
         \x20   use pyo3::types::PyModuleMethods;\n{classes}    Ok(())\n}}\n"
    );
    let target = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("optim.rs");
    fs::write(target, out).expect("OUT_DIR is writeable");
}

fn set(name: &str, value: &str) {
    // One line: a newline in a value (a crafted GIT_REVISION file, say) would start another
    // cargo directive.
    let value: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    println!("cargo:rustc-env={name}={value}");
}

/// The revision of the checkout the Rust sources come from, `+modified` when they differ from it.
/// An sdist has no checkout: `scripts/wheel.sh` writes the revision into its `GIT_REVISION` file.
/// `OPTRS_GIT_REVISION` overrides both.
fn git_revision(manifest: &Path) -> String {
    if let Ok(revision) = env::var("OPTRS_GIT_REVISION") {
        return revision;
    }
    let from_sdist = manifest.join("GIT_REVISION");
    let workspace = manifest.join("../..");
    // A checkout is ours only if its top is this workspace: an sdist unpacked inside some other
    // repository must not report that repository's revision.
    let top = output(
        Command::new("git")
            .args(["rev-parse", "--show-toplevel"])
            .current_dir(manifest),
    );
    let ours = top.is_some_and(|top| same_dir(Path::new(&top), &workspace));
    if !ours {
        println!("cargo:rerun-if-changed={}", from_sdist.display());
        return std::fs::read_to_string(&from_sdist)
            .map(|r| {
                let first_line = r.lines().next().unwrap_or("").trim();
                let revision: String = first_line.chars().take(64).collect();
                format!("{revision} (from the sdist)")
            })
            .unwrap_or_else(|_| "unknown (not built from a git checkout)".into());
    }
    // Rerun when the checkout moves to another commit, or the Rust sources change.
    if let Some(git_dir) = output(
        Command::new("git")
            .args(["rev-parse", "--absolute-git-dir"])
            .current_dir(manifest),
    ) {
        let git_dir = PathBuf::from(git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Some(head_ref) = output(
            Command::new("git")
                .args(["symbolic-ref", "-q", "HEAD"])
                .current_dir(manifest),
        ) {
            println!(
                "cargo:rerun-if-changed={}",
                git_dir.join(head_ref).display()
            );
        }
    }
    for path in ["rust/core/src", "rust/py/src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    let revision = output(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(manifest),
    )
    .unwrap_or_else(|| "unknown".into());
    let modified = output(
        Command::new("git")
            .args([
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "rust",
                "Cargo.toml",
                "Cargo.lock",
            ])
            .current_dir(&workspace),
    )
    .is_some_and(|changes| !changes.is_empty());
    if modified {
        format!("{revision}+modified")
    } else {
        revision
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// A command's trimmed stdout, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
