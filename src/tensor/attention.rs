//! Causal grouped-query attention over the KV cache.

use super::kv::{KvKernels, KvRows};
use super::ops::softmax;
use rayon::prelude::*;

/// Head geometry of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Mistral's sliding window: a token sees at most this many positions (itself included).
    pub window: Option<usize>,
}

/// Attention for `n` consecutive tokens at positions `pos0 .. pos0 + n`, whose keys and values are
/// already in `k` / `v`. Token `i` attends to positions `..= pos0 + i` (within the window).
///
/// `q`: `[n, n_head * head_dim]` (RoPE applied); `out`: `[n, n_head * head_dim]`.
pub fn attention(
    q: &[f32],
    shape: AttnShape,
    k: &KvRows,
    v: &KvRows,
    pos0: usize,
    kern: &KvKernels,
    out: &mut [f32],
) {
    let hd = shape.head_dim;
    let group = shape.n_head / shape.n_kv_head; // query heads per KV head
    let row_len = shape.n_kv_head * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    out.par_chunks_mut(hd).enumerate().for_each(|(i, o)| {
        let (t, h) = (i / shape.n_head, i % shape.n_head);
        let pos = pos0 + t;
        let first = shape.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let off = (h / group) * hd;
        let qh = k.query(&q[i * hd..(i + 1) * hd]);
        let mut scores: Vec<f32> = (first..=pos)
            .map(|p| k.dot(kern, p, row_len, off, &qh) * scale)
            .collect();
        softmax(&mut scores);
        o.fill(0.0);
        for (p, &s) in (first..=pos).zip(&scores) {
            v.add_scaled(p, row_len, off, s, o);
        }
    });
}
