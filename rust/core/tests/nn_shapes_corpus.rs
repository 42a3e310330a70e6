//! Replays the `nn_shapes` fuzz corpus (`fuzz/corpus/nn_shapes/`) through the fuzz target's check,
//! so the cases the fuzzer found interesting are checked on stable Rust in every test run.

use optrs_core::nn::size::check::nn_shapes;
use std::path::Path;

#[test]
fn corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/nn_shapes");
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory is in the repository") {
        let path = entry.expect("a readable corpus entry").path();
        nn_shapes(&std::fs::read(&path).expect("a readable corpus file"));
        cases += 1;
    }
    assert!(cases > 0, "{} holds no corpus files", dir.display());
}
