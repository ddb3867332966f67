//! The engine seams: several sequences in one forward pass, and experts computed behind an
//! executor, on the fixtures' stories-moe (Q8_0, Q4_0) and mixtral-mini (Q4_K_M) files.

mod common;

use common::model::{model, open};
use std::sync::{Arc, Mutex};
use tandem::gguf::GgufFile;
use tandem::model::experts::{CpuExperts, ExpertExecutor, ExpertWork, Placement};
use tandem::model::forward::{ForwardError, Routing, SeqStep};
use tandem::model::{KvCache, Logits, Model, Scratch};
use tandem::tensor::kv::KvType;

/// Stories-moe rows are 2 blocks long (the plain kernels); mixtral-mini's 8 and 16 blocks take
/// the grouped Q4_0/Q8_0 kernels and the multi-row K-quant dots.
const FILES: [&str; 4] = [
    "stories-moe/stories260K-moe8x-finetuned-Q8_0.gguf",
    "stories-moe/stories260K-moe8x-finetuned-Q4_0.gguf",
    "mixtral-mini/mixtral-mini-Q4_0.gguf",
    "mixtral-mini/mixtral-mini-Q4_K_M.gguf",
];

fn cache(m: &Model, n_ctx: usize) -> KvCache {
    let c = &m.config;
    KvCache::new(KvType::F16, c.n_layer, n_ctx, c.n_kv_head, c.head_dim).unwrap()
}

/// Deterministic token ids below `n_vocab`, different per `seed`.
fn tokens(seed: u32, n: usize, n_vocab: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (seed.wrapping_mul(7919).wrapping_add(i * 104_729) >> 3) % n_vocab as u32)
        .collect()
}

/// Bit-for-bit equality, reporting the first difference.
fn same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{what}: first difference at {i}: {} vs {}", got[i], want[i]);
    }
}

/// Each row's products, attention and expert FFN depend only on that row, its sequence's cache
/// and the weights: activations are quantized per row, every kernel tile computes each (weight
/// row, activation row) pair with the same operations in the same order as a single row does,
/// and each token adds its experts' outputs in expert-id order. So running four sequences
/// together must give each one, bit for bit, what it gets alone.
#[test]
fn four_sequences_in_one_pass_equal_each_alone() {
    let Some(fx) = common::fixtures() else { return };
    for rel in FILES {
        let file = open(&fx.join(rel));
        let m = model(&file);
        let n_vocab = m.config.n_vocab;
        // (prefix already in the cache, chunk fed in the batched step, logits wanted)
        let shapes = [
            (0, 7, Logits::All),
            (3, 1, Logits::Last),
            (17, 12, Logits::All),
            (40, 1, Logits::Last),
        ];
        let seqs: Vec<(Vec<u32>, Vec<u32>)> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(p, c, _))| {
                let all = tokens(i as u32 + 1, p + c + 1, n_vocab);
                (all[..p].to_vec(), all[p..].to_vec())
            })
            .collect();
        let prefilled = |m: &Model, prefix: &[u32]| {
            let mut kv = cache(m, 64);
            if !prefix.is_empty() {
                m.forward(prefix, &mut kv, Logits::Last, None).unwrap();
            }
            kv
        };

        // Alone: the chunk, then one more token.
        let mut alone = Vec::new();
        for ((prefix, rest), &(_, c, want)) in seqs.iter().zip(&shapes) {
            let mut kv = prefilled(&m, prefix);
            let mut routing = Routing::new();
            let chunk = m
                .forward(&rest[..c], &mut kv, want, Some(&mut routing))
                .unwrap();
            let next = m.forward(&rest[c..], &mut kv, Logits::Last, None).unwrap();
            alone.push((chunk, next, routing));
        }

        // Together: the four chunks in one step, then the four next tokens in one step. The
        // scratch starts too small for the first step (it grows) and is reused for the second.
        let mut scratch = Scratch::new(&m.config, 2);
        let mut caches: Vec<KvCache> = seqs.iter().map(|(p, _)| prefilled(&m, p)).collect();
        let mut routings = vec![Routing::new(); 4];
        let mut step: Vec<SeqStep> = caches
            .iter_mut()
            .zip(&mut routings)
            .zip(seqs.iter().zip(&shapes))
            .map(|((kv, r), ((_, rest), &(_, c, want)))| SeqStep {
                tokens: &rest[..c],
                cache: kv,
                logits: want,
                routing: Some(r),
            })
            .collect();
        let chunks = m.forward_batch(&mut step, &mut scratch).unwrap();
        drop(step);
        let mut step: Vec<SeqStep> = caches
            .iter_mut()
            .zip(seqs.iter().zip(&shapes))
            .map(|(kv, ((_, rest), &(_, c, _)))| SeqStep {
                tokens: &rest[c..],
                cache: kv,
                logits: Logits::Last,
                routing: None,
            })
            .collect();
        let nexts = m.forward_batch(&mut step, &mut scratch).unwrap();

        for (i, (want, (chunk, next))) in alone.iter().zip(chunks.iter().zip(&nexts)).enumerate() {
            same(
                chunk,
                &want.0,
                &format!("{rel}: sequence {i}, batched chunk logits"),
            );
            same(
                next,
                &want.1,
                &format!("{rel}: sequence {i}, the token after it"),
            );
            assert_eq!(routings[i], want.2, "{rel}: sequence {i}, routing");
            assert_eq!(caches[i].len, shapes[i].0 + shapes[i].1 + 1);
        }
        eprintln!("{rel}: 4 sequences batched, logits equal bit for bit");
    }
}

/// A batch that does not fit leaves every cache as it was.
#[test]
fn a_batch_with_one_bad_sequence_changes_no_cache() {
    let Some(fx) = common::fixtures() else { return };
    let file = open(&fx.join(FILES[0]));
    let m = model(&file);
    let (mut a, mut b) = (cache(&m, 8), cache(&m, 8));
    let mut step = [
        SeqStep {
            tokens: &[1, 2, 3],
            cache: &mut a,
            logits: Logits::Last,
            routing: None,
        },
        SeqStep {
            tokens: &[1; 9],
            cache: &mut b,
            logits: Logits::Last,
            routing: None,
        },
    ];
    let e = m
        .forward_batch(&mut step, &mut Scratch::default())
        .unwrap_err();
    assert!(matches!(e, ForwardError::ContextFull { add: 9, .. }), "{e}");
    assert_eq!((a.len, b.len), (0, 0));
    let mut step = [SeqStep {
        tokens: &[],
        cache: &mut a,
        logits: Logits::Last,
        routing: None,
    }];
    let e = m
        .forward_batch(&mut step, &mut Scratch::default())
        .unwrap_err();
    assert!(matches!(e, ForwardError::EmptySequence { index: 0 }), "{e}");
}

/// Records every call, then has the CPU executor (on its own view of the file) do the work.
struct Recording<'a> {
    inner: CpuExperts<'a>,
    d_model: usize,
    /// (layer, expert, rows) per expert computed.
    calls: Arc<Mutex<Vec<(usize, usize, usize)>>>,
}

impl ExpertExecutor for Recording<'_> {
    fn start(&self, layer: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        let mut calls = self.calls.lock().unwrap();
        for w in work.iter() {
            calls.push((layer, w.expert, w.rows(self.d_model)));
        }
        drop(calls);
        self.inner.run(layer, work)
    }
}

fn recording<'a>(file: &'a GgufFile, m: &Model) -> Recording<'a> {
    let other = model(file);
    Recording {
        inner: CpuExperts::new(&other.weights, m.kernels()),
        d_model: m.config.d_model,
        calls: Arc::default(),
    }
}

/// Returns zeros: an expert whose output is dropped.
struct Zeros;

impl ExpertExecutor for Zeros {
    fn start(&self, _: usize, work: &mut [ExpertWork<'_>]) -> Result<(), ForwardError> {
        work.iter_mut().for_each(|w| w.output.fill(0.0));
        Ok(())
    }
}

/// The MoE block goes through the executor the placement names: a recording executor sees
/// exactly the (layer, expert, rows) the routing implies, in one call per layer, and the logits
/// are those of the plain model bit for bit, whether it runs all experts or only the odd ones
/// (the combine is in expert-id order wherever an expert ran). An executor that returns zeros
/// changes them, so its output is what the forward pass uses.
#[test]
fn experts_run_through_the_executor_the_placement_names() {
    let Some(fx) = common::fixtures() else { return };
    for rel in FILES {
        let file = open(&fx.join(rel));
        let plain = model(&file);
        let ids = tokens(5, 20, plain.config.n_vocab);
        let mut routing = Routing::new();
        let want = plain
            .forward(
                &ids,
                &mut cache(&plain, 32),
                Logits::All,
                Some(&mut routing),
            )
            .unwrap();
        let (n_layer, n_expert) = (plain.config.n_layer, plain.config.n_expert);

        for odd_only in [false, true] {
            let mut placement = Placement::cpu(n_layer, n_expert);
            for l in 0..n_layer {
                for e in (0..n_expert).filter(|e| !odd_only || e % 2 == 1) {
                    placement.set(l, e, true);
                }
            }
            let rec = recording(&file, &plain);
            let m = model(&file).with_expert_executor(Box::new(rec), placement);
            let got = m
                .forward(&ids, &mut cache(&m, 32), Logits::All, None)
                .unwrap();
            same(&got, &want, &format!("{rel}: logits through the executor"));
            drop(got);
        }

        // The calls, checked against the routing.
        let rec = recording(&file, &plain);
        let log = rec.calls.clone();
        let m = model(&file)
            .with_expert_executor(Box::new(rec), Placement::all_offloaded(n_layer, n_expert));
        m.forward(&ids, &mut cache(&m, 32), Logits::Last, None)
            .unwrap();
        let calls = log.lock().unwrap().clone();
        let mut want_calls = Vec::new();
        for (l, routes) in routing.iter().enumerate() {
            for e in 0..n_expert {
                let rows = routes
                    .iter()
                    .filter(|r| r.experts.contains(&(e as u32)))
                    .count();
                if rows > 0 {
                    want_calls.push((l, e, rows));
                }
            }
        }
        assert_eq!(calls, want_calls, "{rel}: executor calls");
        eprintln!("{rel}: {} expert calls recorded, as routed", calls.len());

        let zeros = model(&file)
            .with_expert_executor(Box::new(Zeros), Placement::all_offloaded(n_layer, n_expert));
        let got = zeros
            .forward(&ids, &mut cache(&zeros, 32), Logits::All, None)
            .unwrap();
        assert_ne!(got, want, "{rel}: zero experts must change the logits");
    }
}
