//! `Engine::open`, the library's entry point, on the demo model shipped in `tests/data`: it runs
//! work on a pool of its own with the threads asked for, its sessions use the KV type and
//! activations it was given, and its errors name what is wrong.

use std::path::PathBuf;
use tandem::engine::{Engine, EngineError, EngineOptions};
use tandem::model::Logits;
use tandem::tensor::kv::KvType;
use tandem::tensor::matmul::Activations;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/stories260K-moe8x-finetuned-Q8_0.gguf")
}

#[test]
fn work_runs_on_the_engines_own_pool() {
    let options = EngineOptions {
        threads: Some(1),
        kv_type: KvType::F32,
        activations: Activations::Q16,
        ..EngineOptions::default()
    };
    let engine = Engine::open(&demo(), options).unwrap();
    assert_eq!(engine.threads(), 1);
    // Outside: not one of the engine's threads. Inside: a worker of a one-thread pool, whatever
    // the global pool has.
    assert_eq!(rayon::current_thread_index(), None);
    let (index, threads) =
        engine.install(|| (rayon::current_thread_index(), rayon::current_num_threads()));
    assert_eq!((index, threads), (Some(0), 1));

    let ids = engine.tokenizer.encode("Once upon a time", true).unwrap();
    let got = engine.install(|| {
        let model = engine.model().unwrap();
        let mut s = engine.session(&model, 32).unwrap();
        assert_eq!(s.cache.ty, KvType::F32);
        s.prefill(&ids, Logits::Last, None).unwrap()
    });
    // The same logits as a model built by hand with the same activations and cache type.
    let file = tandem::gguf::GgufFile::open(demo()).unwrap();
    let c = tandem::model::ModelConfig::from_gguf(&file).unwrap();
    let w = tandem::model::weights::Weights::from_gguf(&file, &c).unwrap();
    let m = tandem::model::Model::new(c, w).with_activations(Activations::Q16);
    let mut s = tandem::session::Session::new(&m, 32, KvType::F32).unwrap();
    let want = s.prefill(&ids, Logits::Last, None).unwrap();
    assert_eq!(got, want);
}

#[test]
fn errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let open = |p: &std::path::Path, threads| {
        let options = EngineOptions {
            threads,
            ..EngineOptions::default()
        };
        Engine::open(p, options).err().expect("an error")
    };
    let e = open(dir.path(), None);
    assert!(matches!(e, EngineError::Directory(_)), "{e}");
    assert!(e.to_string().contains("is a directory"), "{e}");

    let missing = dir.path().join("missing.gguf");
    let e = open(&missing, None);
    assert!(matches!(e, EngineError::Read(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read {}", missing.display())),
        "{e}"
    );

    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let e = open(&junk, None);
    assert!(matches!(e, EngineError::Open { .. }), "{e}");

    let e = open(&demo(), Some(0));
    assert!(matches!(e, EngineError::Threads(_)), "{e}");
}
