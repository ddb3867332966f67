//! The conversation's KV cache: keys and values of every layer and position so far.

use crate::tensor::kv::{KvRows, KvType};

pub struct KvCache {
    pub ty: KvType,
    /// Positions the cache can hold.
    pub n_ctx: usize,
    /// Positions filled so far; the next token goes at this position.
    pub len: usize,
    /// Per layer: keys and values, each `[n_ctx, n_kv_head * head_dim]`.
    pub layers: Vec<(KvRows, KvRows)>,
}

impl KvCache {
    /// An empty cache of `n_ctx` positions. Q8_0 quantizes each head separately, so it needs
    /// `head_dim` to be a multiple of 32.
    pub fn new(
        ty: KvType,
        n_layer: usize,
        n_ctx: usize,
        n_kv_head: usize,
        head_dim: usize,
    ) -> Result<Self, String> {
        if ty == KvType::Q8_0 && !head_dim.is_multiple_of(32) {
            return Err(format!(
                "--kv-type q8_0 needs a head size that is a multiple of 32; this model's is {head_dim}"
            ));
        }
        let row = n_kv_head * head_dim;
        let layers = (0..n_layer)
            .map(|_| (KvRows::new(ty, n_ctx, row), KvRows::new(ty, n_ctx, row)))
            .collect();
        Ok(KvCache {
            ty,
            n_ctx,
            len: 0,
            layers,
        })
    }

    /// Forgets every position from `len` on (a new turn, or a rewind).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes the cache occupies.
    pub fn bytes(&self, n_kv_head: usize, head_dim: usize) -> f64 {
        2.0 * (self.layers.len() * self.n_ctx * n_kv_head * head_dim) as f64
            * self.ty.bytes_per_value()
    }
}
