//! Property tests of the reader on hostile bytes.
//!
//! Valid small files with random metadata (every value type, nested arrays, odd strings) and
//! random tensors are encoded by the test-side encoder, checked to round-trip through the writer
//! and the reader, and then truncated at many lengths and mutated (random bytes, and the exact
//! length/count/offset fields set to huge values). The reader must return Ok or Err, never panic,
//! and its peak memory must stay proportional to the input size (measured by a counting global
//! allocator). The real fixture headers are replayed the same way.
//!
//! Case counts are printed; run with `--nocapture` to see them. `PROPTEST_CASES` overrides the
//! number of generated files.

mod common;
mod gguf_support;

use gguf_support::{same_value, FileSpec, Raw, TensorData};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError, TestRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tandem::gguf::{Array, GgufHeader, GgufString, GgufWriter, Metadata, TensorSpec, Value};
use tandem::quant::GgmlType;

// ---- memory accounting -------------------------------------------------------------------------

/// Counts live heap bytes per thread, so a parse's peak can be measured while other tests run.
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn account(grow: usize, shrink: usize) {
    let _ = LIVE.try_with(|live| {
        let now = (live.get() + grow).saturating_sub(shrink);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only const-initialised
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size(), 0);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(0, layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size, layout.size());
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most heap this thread held at once during `f`, above what it held before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

/// What a parse may hold at once: metadata copied into typed vectors costs a few times its
/// on-disk size (a string or inner array is a 24-byte Vec header for 8 or 12 bytes on disk,
/// vectors grow by doubling, the name index duplicates tensor names), plus a fixed slack for
/// small maps. 32x is far below what an unchecked length would cause (gigabytes or an abort).
fn memory_bound(len: usize) -> usize {
    32 * len + (64 << 10)
}

static FILES: AtomicU64 = AtomicU64::new(0);
static TRUNCATIONS: AtomicU64 = AtomicU64::new(0);
static MUTATIONS: AtomicU64 = AtomicU64::new(0);
static MUTANTS_OK: AtomicU64 = AtomicU64::new(0);
static WORST_RATIO_X100: AtomicU64 = AtomicU64::new(0);

/// Parses `bytes` (which must not panic) with its memory measured; returns whether it parsed.
fn parse_checked(bytes: &[u8]) -> bool {
    let (result, peak) = peak_during(|| GgufHeader::parse(bytes));
    assert!(
        peak <= memory_bound(bytes.len()),
        "parse of {} bytes held {peak} bytes at once",
        bytes.len()
    );
    WORST_RATIO_X100.fetch_max((peak * 100 / bytes.len().max(1)) as u64, Relaxed);
    match result {
        Ok(h) => {
            // A header that parsed must describe data that lies inside the bytes.
            for t in h.tensors() {
                let r = h.tensor_range(t);
                assert!(r.end <= bytes.len() && bytes[r].len() as u64 == t.nbytes());
            }
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

// ---- a small deterministic RNG for mutations ----------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break naive length arithmetic.
fn huge(rng: &mut Rng, len: usize) -> u64 {
    let picks = [
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
        (1 << 63) - 1,
        1 << 32,
        (1 << 32) - 1,
        1 << 40,
        u64::MAX / 8 + 1,
        u64::MAX / 12 + 1,
        len as u64,
        len as u64 + 1,
        len as u64 / 2,
    ];
    picks[rng.below(picks.len())]
}

/// One mutation of `raw`: random bytes, or a recorded u64 or u32 field set to an edge value.
fn mutate(raw: &Raw, rng: &mut Rng, limit: usize) -> Vec<u8> {
    let mut b = raw.bytes.clone();
    let limit = limit.min(b.len()).max(1);
    match rng.below(3) {
        0 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(limit);
                if i < b.len() {
                    b[i] = rng.next() as u8;
                }
            }
        }
        1 if !raw.u64_fields.is_empty() => {
            let at = raw.u64_fields[rng.below(raw.u64_fields.len())];
            let v = huge(rng, b.len());
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        _ if !raw.u32_fields.is_empty() => {
            let at = raw.u32_fields[rng.below(raw.u32_fields.len())];
            let picks = [rng.next() as u32, u32::MAX, 9, 13, 5, 31, 0x0300_0000];
            b[at..at + 4].copy_from_slice(&picks[rng.below(picks.len())].to_le_bytes());
        }
        _ => {}
    }
    b
}

// ---- strategies ---------------------------------------------------------------------------------

fn gstring() -> impl Strategy<Value = GgufString> {
    prop_oneof![
        "[a-z<>▁ ]{0,8}".prop_map(GgufString::from),
        vec(any::<u8>(), 0..6).prop_map(GgufString::from), // not always UTF-8
    ]
}

fn leaf_array() -> impl Strategy<Value = Array> {
    let n = 0..6usize;
    let ints = prop_oneof![
        vec(any::<u8>(), n.clone()).prop_map(Array::U8),
        vec(any::<i8>(), n.clone()).prop_map(Array::I8),
        vec(any::<u16>(), n.clone()).prop_map(Array::U16),
        vec(any::<i16>(), n.clone()).prop_map(Array::I16),
        vec(any::<u32>(), n.clone()).prop_map(Array::U32),
        vec(any::<i32>(), n.clone()).prop_map(Array::I32),
        vec(any::<u64>(), n.clone()).prop_map(Array::U64),
        vec(any::<i64>(), n.clone()).prop_map(Array::I64),
    ];
    let others = prop_oneof![
        vec(any::<u32>().prop_map(f32::from_bits), n.clone()).prop_map(Array::F32),
        vec(any::<u64>().prop_map(f64::from_bits), n.clone()).prop_map(Array::F64),
        vec(any::<bool>(), n.clone()).prop_map(Array::Bool),
        vec(gstring(), n).prop_map(Array::String),
    ];
    prop_oneof![ints, others]
}

fn array() -> impl Strategy<Value = Array> {
    leaf_array().prop_recursive(3, 24, 4, |inner| vec(inner, 0..4).prop_map(Array::Array))
}

fn value() -> impl Strategy<Value = Value> {
    let ints = prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
    ];
    let others = prop_oneof![
        any::<u32>().prop_map(|b| Value::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| Value::F64(f64::from_bits(b))),
        any::<bool>().prop_map(Value::Bool),
        gstring().prop_map(Value::String),
        array().prop_map(Value::Array),
    ];
    prop_oneof![ints, others]
}

fn tensor() -> impl Strategy<Value = (GgmlType, Vec<u64>)> {
    (
        proptest::sample::select(GgmlType::ALL),
        0..3u64,
        vec(1..4u64, 0..4),
        any::<bool>(),
    )
        .prop_map(|(ty, blocks, rest, scalar)| {
            // n_dims 0 is a scalar; otherwise the row is a whole number of blocks.
            if scalar && ty.block_values() == 1 {
                return (ty, vec![]);
            }
            let mut ne = vec![blocks * ty.block_values() as u64];
            ne.extend(rest);
            (ty, ne)
        })
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    (
        prop_oneof![Just(2u32), Just(3u32)],
        vec(("[a-z._]{0,10}", value()), 0..8),
        proptest::option::of(proptest::sample::select(vec![
            1u32, 2, 4, 8, 16, 32, 64, 256,
        ])),
        vec(("[a-z0-9._]{0,12}", tensor()), 0..5),
        any::<u64>(),
    )
        .prop_map(|(version, kvs, alignment, tensors, seed)| {
            // Index prefixes make keys and names unique.
            let mut kvs: Vec<(String, Value)> = kvs
                .into_iter()
                .enumerate()
                .map(|(i, (k, v))| (format!("{i}{k}"), v))
                .collect();
            if let Some(a) = alignment {
                kvs.insert(kvs.len() / 2, ("general.alignment".into(), Value::U32(a)));
            }
            let mut rng = Rng(seed | 1);
            let tensors = tensors
                .into_iter()
                .enumerate()
                .map(|(i, (name, (ty, ne)))| {
                    let n = gguf_support::nbytes(ty, &ne) as usize;
                    TensorData {
                        name: format!("{i}{name}"),
                        ty,
                        ne,
                        data: (0..n).map(|_| rng.next() as u8).collect(),
                    }
                })
                .collect();
            FileSpec {
                version,
                kvs,
                tensors,
            }
        })
}

// ---- properties ---------------------------------------------------------------------------------

/// The writer (v3 only) must produce exactly the encoder's bytes.
fn writer_bytes(spec: &FileSpec) -> Vec<u8> {
    let mut md = Metadata::new();
    for (k, v) in &spec.kvs {
        md.push(k.clone(), v.clone()).unwrap();
    }
    let specs: Vec<TensorSpec> = spec
        .tensors
        .iter()
        .map(|t| TensorSpec::new(t.name.clone(), t.ty, &t.ne))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.gguf");
    let mut w = GgufWriter::create(&path, &md, &specs).unwrap();
    for t in &spec.tensors {
        w.write_tensor(&t.name, &t.data).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

fn check_round_trip(spec: &FileSpec, bytes: &[u8], data_start: usize, offsets: &[u64]) {
    let h = GgufHeader::parse(bytes).unwrap();
    assert_eq!(h.version(), spec.version);
    assert_eq!(h.alignment(), spec.alignment() as u64);
    assert_eq!(h.data_offset(), data_start as u64);
    let md = h.metadata().entries();
    assert_eq!(md.len(), spec.kvs.len());
    for (got, (k, v)) in md.iter().zip(&spec.kvs) {
        assert_eq!(&got.key, k);
        assert!(same_value(&got.value, v), "`{k}`: {:?} != {v:?}", got.value);
    }
    assert_eq!(h.tensors().len(), spec.tensors.len());
    for ((got, want), off) in h.tensors().iter().zip(&spec.tensors).zip(offsets) {
        assert_eq!(
            (got.name(), got.ty(), got.ne()),
            (want.name.as_str(), want.ty, &want.ne[..])
        );
        assert_eq!(got.offset(), *off);
        assert_eq!(&bytes[h.tensor_range(got)], &want.data[..]);
    }
}

fn generated_file(spec: &FileSpec, seed: u64) -> Result<(), TestCaseError> {
    FILES.fetch_add(1, Relaxed);
    let enc = spec.encode();
    let bytes = &enc.raw.bytes;
    if spec.version == 3 {
        prop_assert!(
            &writer_bytes(spec) == bytes,
            "writer differs from the encoder"
        );
    }
    check_round_trip(spec, bytes, enc.data_start, &enc.offsets);

    // Truncation: every length through the header and a little data, then samples. A prefix
    // parses exactly when it holds the header and all tensor data.
    let mut rng = Rng(seed | 1);
    let dense = bytes.len().min(enc.data_start + 64);
    let lens = (0..dense).chain((0..32).map(|_| rng.below(bytes.len() + 1)));
    for len in lens {
        TRUNCATIONS.fetch_add(1, Relaxed);
        let ok = parse_checked(&bytes[..len]);
        prop_assert_eq!(
            ok,
            len >= enc.required,
            "prefix of {} bytes (needs {})",
            len,
            enc.required
        );
    }

    // Mutations, concentrated on the header where the structure is.
    for _ in 0..64 {
        MUTATIONS.fetch_add(1, Relaxed);
        let m = mutate(&enc.raw, &mut rng, enc.header_len + 8);
        if parse_checked(&m) {
            MUTANTS_OK.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}

#[test]
fn generated_files() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let config = ProptestConfig {
        cases,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let seed = common::proptest_seed(0x7a45_c04e);
    println!(
        "gguf_fuzz generated_files: seed {seed} (TANDEM_PROPTEST_SEED={seed} repeats this run)"
    );
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&(file_spec(), any::<u64>()), |(spec, seed)| {
        generated_file(&spec, seed)
    }) {
        panic!("seed {seed}: {e}");
    }
    println!(
        "gguf_fuzz generated_files: {cases} cases ({} files encoded incl. shrinking), {} truncations, \
         {} mutations ({} still parsed), worst parse memory {:.2}x the input",
        FILES.load(Relaxed),
        TRUNCATIONS.load(Relaxed),
        MUTATIONS.load(Relaxed),
        MUTANTS_OK.load(Relaxed),
        WORST_RATIO_X100.load(Relaxed) as f64 / 100.0
    );
}

/// Replays truncations and mutations of the real fixture headers. Field positions for the
/// targeted u64 mutations come from a parse of the unmutated file (checked against the
/// manifests by `gguf_fixtures`).
#[test]
fn fixture_headers() {
    let Some(fx) = common::fixtures() else { return };
    let (mut truncations, mut mutations, mut ok) = (0u64, 0u64, 0u64);
    for (rel, dense) in [
        ("tokenizers/ggml-vocab-mixtral.gguf", 4096),
        ("stories260k/stories260K-f32.gguf", usize::MAX),
        ("mixtral-mini/mixtral-mini-Q4_K_M.gguf", 4096),
    ] {
        let bytes = std::fs::read(fx.join(rel)).unwrap();
        let h = GgufHeader::parse(&bytes).unwrap();
        let raw = fixture_fields(&bytes, &h);
        let header_len = h.header_len() as usize;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // A prefix parses exactly when it holds the header and every tensor's data.
        let required = h
            .tensors()
            .iter()
            .map(|t| h.tensor_range(t).end)
            .max()
            .unwrap_or(header_len);
        let dense = dense.min(h.data_offset() as usize + 64);
        let lens = (0..dense).chain((0..200).map(|_| rng.below(bytes.len())));
        for len in lens.chain(required.saturating_sub(2)..bytes.len()) {
            truncations += 1;
            let ok = parse_checked(&bytes[..len]);
            assert_eq!(
                ok,
                len >= required,
                "{rel}: prefix of {len} bytes (needs {required})"
            );
        }
        assert!(parse_checked(&bytes));
        for _ in 0..300 {
            mutations += 1;
            ok += u64::from(parse_checked(&mutate(&raw, &mut rng, header_len)));
        }
    }
    println!(
        "gguf_fuzz fixture_headers: {truncations} truncations, {mutations} mutations ({ok} still parsed)"
    );
}

/// The file's bytes with the positions of its u64 fields (counts, string and array lengths,
/// ne[], offsets) and u32 fields (value and tensor types, n_dims) marked.
fn fixture_fields(bytes: &[u8], h: &GgufHeader) -> Raw {
    let mut raw = Raw {
        bytes: bytes.to_vec(),
        ..Raw::default()
    };
    raw.u32_fields.push(4);
    raw.u64_fields.extend([8, 16]);
    for e in h.metadata().entries() {
        let at = e.offset.unwrap() as usize;
        raw.u64_fields.push(at);
        let ty_at = at + 8 + e.key.len();
        raw.u32_fields.push(ty_at);
        match &e.value {
            Value::String(_) => raw.u64_fields.push(ty_at + 4),
            Value::Array(a) => {
                raw.u32_fields.push(ty_at + 4);
                raw.u64_fields.push(ty_at + 8);
                if let Some(s) = a.as_strings() {
                    // The first few element lengths.
                    let mut p = ty_at + 16;
                    for st in s.iter().take(4) {
                        raw.u64_fields.push(p);
                        p += 8 + st.as_bytes().len();
                    }
                }
            }
            _ => {}
        }
    }
    for t in h.tensors() {
        let at = t.info_offset() as usize;
        raw.u64_fields.push(at);
        let dims_at = at + 8 + t.name().len();
        raw.u32_fields.push(dims_at);
        for j in 0..t.ne().len() {
            raw.u64_fields.push(dims_at + 4 + 8 * j);
        }
        let ty_at = dims_at + 4 + 8 * t.ne().len();
        raw.u32_fields.push(ty_at);
        raw.u64_fields.push(ty_at + 4);
    }
    raw
}
