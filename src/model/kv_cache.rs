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

/// Bytes a cache of `n_ctx` positions takes (keys and values of every layer), or `None` when the
/// count does not fit in 64 bits.
pub fn kv_bytes(
    ty: KvType,
    n_layer: usize,
    n_ctx: usize,
    n_kv_head: usize,
    head_dim: usize,
) -> Option<u64> {
    let values = [n_layer, n_ctx, n_kv_head, head_dim]
        .iter()
        .try_fold(2u64, |acc, &n| acc.checked_mul(n as u64))?;
    match ty {
        KvType::F32 => values.checked_mul(4),
        KvType::F16 => values.checked_mul(2),
        KvType::Q8_0 => (values / 32).checked_mul(34),
    }
}

/// `bytes` for people: GiB, MiB or KiB with one decimal.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1 << 30 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", b / (1u64 << 20) as f64),
        _ => format!("{:.1} KiB", b / 1024.0),
    }
}

impl KvCache {
    /// An empty cache of `n_ctx` positions. Q8_0 quantizes each head separately, so it needs
    /// `head_dim` to be a multiple of 32. The size is checked before anything is allocated: it
    /// must be counted without overflow and fit in the memory available (Linux `MemAvailable`).
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
        if n_ctx == 0 {
            return Err("a context of 0 tokens holds nothing: --ctx must be at least 1".into());
        }
        let what = format!(
            "the KV cache for {n_ctx} tokens ({}, {n_layer} layers, {n_kv_head} KV heads of {head_dim})",
            ty.name()
        );
        let Some(need) =
            kv_bytes(ty, n_layer, n_ctx, n_kv_head, head_dim).filter(|&b| b <= isize::MAX as u64)
        else {
            return Err(format!(
                "{what} would take more bytes than memory can address: lower --ctx"
            ));
        };
        if let Some(avail) = crate::machine::available_memory().filter(|&a| need > a) {
            return Err(format!(
                "{what} would take {}, more than the {} of memory available: lower --ctx",
                human_bytes(need),
                human_bytes(avail)
            ));
        }
        let row = n_kv_head * head_dim;
        let alloc = || KvRows::new(ty, n_ctx, row);
        let layers = (0..n_layer)
            .map(|_| Some((alloc()?, alloc()?)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{what}: could not allocate {}", human_bytes(need)))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_bytes_counts_keys_and_values_of_every_layer() {
        // Mixtral 8x7B: 32 layers, 8 KV heads of 128, 4096 tokens in f16 = 512 MiB.
        assert_eq!(kv_bytes(KvType::F16, 32, 4096, 8, 128), Some(512 << 20));
        assert_eq!(kv_bytes(KvType::F32, 1, 1, 1, 32), Some(2 * 32 * 4));
        assert_eq!(kv_bytes(KvType::Q8_0, 1, 1, 1, 32), Some(2 * 34));
        assert_eq!(kv_bytes(KvType::F16, 5, usize::MAX, 4, 8), None);
    }

    #[test]
    fn impossible_sizes_are_refused_before_allocating() {
        let err = |n_ctx| KvCache::new(KvType::F16, 5, n_ctx, 4, 8).err().unwrap();
        assert!(err(0).contains("at least 1"), "{}", err(0));
        let e = err(usize::MAX);
        assert!(e.contains("more bytes than memory can address"), "{e}");
        // 2^40 tokens × 5 layers × 2 × 32 values × 2 bytes = 640 TiB: no machine has that.
        let e = err(1 << 40);
        if crate::machine::available_memory().is_some() {
            assert!(e.contains("would take 655360.0 GiB, more than the"), "{e}");
        } else {
            assert!(e.contains("could not allocate"), "{e}");
        }
    }
}
