//! f32 values to the bytes of a block type and back, with the library's reference quantizers,
//! spread over the rayon pool.

use anyhow::{bail, Result};
use rayon::prelude::*;
use tandem::quant::{GgmlType, Quantize};

/// Values handed to one rayon task: big enough to amortise scheduling, small enough to spread
/// a 4096-wide tensor over many cores. A multiple of every block size (256).
const TASK_VALUES: usize = 1 << 16;

/// Whether this tool can write `ty`.
pub fn can_encode(ty: GgmlType) -> bool {
    tandem::dispatch_weight_type!(ty, W => { let _ = std::marker::PhantomData::<W>; true }, else _t => false)
}

/// Quantizes `src` into `out`, which must be exactly the byte size of `src.len()` values of
/// `ty`. `src.len()` must be a whole number of blocks (the caller checked the row length).
pub fn encode(ty: GgmlType, src: &[f32], out: &mut [u8]) -> Result<()> {
    tandem::dispatch_weight_type!(ty, W => encode_as::<W>(src, out), else t => bail!("cannot write {t}"))
}

fn encode_as<W: Quantize>(src: &[f32], out: &mut [u8]) -> Result<()> {
    let block_bytes = std::mem::size_of::<W>();
    if !src.len().is_multiple_of(W::VALUES) || out.len() != src.len() / W::VALUES * block_bytes {
        bail!(
            "{} values of {} take {} bytes, not {}",
            src.len(),
            W::TYPE,
            src.len() / W::VALUES * block_bytes,
            out.len()
        );
    }
    let task_blocks = (TASK_VALUES / W::VALUES).max(1);
    src.par_chunks(task_blocks * W::VALUES)
        .zip(out.par_chunks_mut(task_blocks * block_bytes))
        .for_each(|(x, y)| {
            let mut blocks = vec![W::zeroed(); x.len() / W::VALUES];
            W::quantize(x, &mut blocks);
            y.copy_from_slice(bytemuck::cast_slice(&blocks));
        });
    Ok(())
}

/// Dequantizes `bytes` of type `ty` into `out` (one f32 per value).
pub fn decode(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    tandem::dispatch_weight_type!(ty, W => decode_as::<W>(bytes, out), else t => bail!("cannot read {t}"))
}

fn decode_as<W: Quantize>(bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let block_bytes = std::mem::size_of::<W>();
    if !bytes.len().is_multiple_of(block_bytes)
        || bytes.len() / block_bytes * W::VALUES != out.len()
    {
        bail!(
            "{} bytes of {} do not hold {} values",
            bytes.len(),
            W::TYPE,
            out.len()
        );
    }
    let task_blocks = (TASK_VALUES / W::VALUES).max(1);
    bytes
        .par_chunks(task_blocks * block_bytes)
        .zip(out.par_chunks_mut(task_blocks * W::VALUES))
        .for_each(|(b, y)| match bytemuck::try_cast_slice::<u8, W>(b) {
            Ok(blocks) => W::dequantize(blocks, y),
            // The mapping is not aligned for W: copy the blocks out first.
            Err(_) => {
                let mut blocks = vec![W::zeroed(); b.len() / block_bytes];
                bytemuck::cast_slice_mut::<W, u8>(&mut blocks).copy_from_slice(b);
                W::dequantize(&blocks, y)
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::quant::BlockQ4_0;

    #[test]
    fn parallel_encode_equals_one_pass_over_many_lengths() {
        // Lengths that leave partial rayon tasks (not multiples of TASK_VALUES).
        for n_blocks in [1usize, 7, 2048, 2049, 5000] {
            let src: Vec<f32> = (0..n_blocks * 32)
                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 300.0)
                .collect();
            let mut out = vec![0u8; n_blocks * 18];
            encode(GgmlType::Q4_0, &src, &mut out).unwrap();
            let mut blocks = vec![BlockQ4_0::default(); n_blocks];
            BlockQ4_0::quantize(&src, &mut blocks);
            assert_eq!(out, bytemuck::cast_slice::<_, u8>(&blocks));
            let mut back = vec![0.0; src.len()];
            decode(GgmlType::Q4_0, &out, &mut back).unwrap();
            let mut want = vec![0.0; src.len()];
            BlockQ4_0::dequantize(&blocks, &mut want);
            assert_eq!(back, want);
        }
    }

    #[test]
    fn size_mismatches_are_errors() {
        assert!(encode(GgmlType::Q4_0, &[0.0; 33], &mut [0; 18]).is_err());
        assert!(encode(GgmlType::Q8_0, &[0.0; 32], &mut [0; 18]).is_err());
        assert!(encode(GgmlType::Q8_K, &[0.0; 256], &mut [0; 292]).is_err());
        assert!(decode(GgmlType::F16, &[0; 3], &mut [0.0; 1]).is_err());
        assert!(can_encode(GgmlType::Q6_K) && !can_encode(GgmlType::Q8_K));
    }
}
