//! The float formats F32, F16 and BF16: blocks of one value.
//!
//! Float weights are dotted with f32 activations as they are (`Act = f32`): ggml rounds the
//! activations of an F16 matmul to f16, tandem does not, so a float model computes on exactly the
//! weights the file stores and nothing coarser.
//!
//! f32 → f16 and f32 → bf16 round to nearest, ties to even, as numpy's `astype(float16)` and
//! gguf-py's BF16 quantizer do (a NaN stays a quiet NaN).

use super::{Block, DotWith, GgmlType, Quantize};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

impl Block for f32 {
    const TYPE: GgmlType = GgmlType::F32;
    const VALUES: usize = 1;
}

impl Block for f16 {
    const TYPE: GgmlType = GgmlType::F16;
    const VALUES: usize = 1;
}

impl Block for bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const VALUES: usize = 1;
}

fn check_lengths(what: &str, values: usize, out: usize) {
    assert_eq!(values, out, "{what}: {values} values for {out} outputs");
}

impl Quantize for f32 {
    fn quantize(src: &[f32], out: &mut [f32]) {
        check_lengths("F32 quantize", src.len(), out.len());
        out.copy_from_slice(src);
    }

    fn dequantize(blocks: &[f32], out: &mut [f32]) {
        check_lengths("F32 dequantize", blocks.len(), out.len());
        out.copy_from_slice(blocks);
    }
}

impl Quantize for f16 {
    fn quantize(src: &[f32], out: &mut [f16]) {
        check_lengths("F16 quantize", src.len(), out.len());
        // `half` rounds to nearest-even (F16C's vcvtps2ph with RNE where the CPU has it).
        out.convert_from_f32_slice(src);
    }

    fn dequantize(blocks: &[f16], out: &mut [f32]) {
        check_lengths("F16 dequantize", blocks.len(), out.len());
        blocks.convert_to_f32_slice(out);
    }
}

impl Quantize for bf16 {
    fn quantize(src: &[f32], out: &mut [bf16]) {
        check_lengths("BF16 quantize", src.len(), out.len());
        // Same bits as gguf-py: NaN → quiet NaN, otherwise add 0x7fff + lsb and truncate.
        out.convert_from_f32_slice(src);
    }

    fn dequantize(blocks: &[bf16], out: &mut [f32]) {
        check_lengths("BF16 dequantize", blocks.len(), out.len());
        blocks.convert_to_f32_slice(out);
    }
}

impl DotWith for f32 {
    type Act = f32;

    fn dot_scalar(w: &[f32], x: &[f32]) -> f32 {
        check_lengths("F32 dot", w.len(), x.len());
        w.iter().zip(x).map(|(&a, &b)| a * b).sum()
    }
}

impl DotWith for f16 {
    type Act = f32;

    fn dot_scalar(w: &[f16], x: &[f32]) -> f32 {
        check_lengths("F16 dot", w.len(), x.len());
        w.iter().zip(x).map(|(&a, &b)| a.to_f32() * b).sum()
    }
}

impl DotWith for bf16 {
    type Act = f32;

    fn dot_scalar(w: &[bf16], x: &[f32]) -> f32 {
        check_lengths("BF16 dot", w.len(), x.len());
        w.iter().zip(x).map(|(&a, &b)| a.to_f32() * b).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rounds_to_nearest_even() {
        // 1 + 2^-11 is halfway between 1 and the next f16 (1 + 2^-10): ties go to the even one.
        let mut out = [f16::ZERO; 3];
        f16::quantize(
            &[1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11), 65520.0],
            &mut out,
        );
        assert_eq!(out[0].to_bits(), 0x3c00);
        assert_eq!(out[1].to_bits(), 0x3c02);
        assert_eq!(
            out[2],
            f16::INFINITY,
            "65520 is the first value that rounds to infinity"
        );
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        let mut out = [bf16::ZERO; 2];
        bf16::quantize(
            &[f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000)],
            &mut out,
        );
        assert_eq!(out[0].to_bits(), 0x3f80);
        assert_eq!(out[1].to_bits(), 0x3f82);
    }

    #[test]
    fn float_dot_is_plain_sum_of_products() {
        let w = [f16::from_f32(0.5), f16::from_f32(-2.0), f16::from_f32(3.0)];
        assert_eq!(f16::dot_scalar(&w, &[2.0, 1.0, 0.25]), 1.0 - 2.0 + 0.75);
    }
}
