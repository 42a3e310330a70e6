//! Replays the cargo-fuzz corpora (`fuzz/corpus/<target>/`) through each target's check, so the
//! cases the fuzzer found interesting are checked on stable Rust in every test run.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory is in the repository") {
        let path = entry.expect("a readable corpus entry").path();
        check(&std::fs::read(&path).expect("a readable corpus file"));
        cases += 1;
    }
    assert!(cases > 0, "{} holds no corpus files", dir.display());
}

#[test]
fn nn_shapes_corpus_replays() {
    replay("nn_shapes", optrs_core::nn::size::check::nn_shapes);
}

#[test]
fn registration_corpus_replays() {
    replay("registration", optrs_core::layout::check::registration);
}
