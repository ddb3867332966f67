//! AVX-512 (F + BW) kernels for the K-quants, and the same dots with AVX-512 VNNI.
//!
//! The dots work 64 values per instruction: `maddubs` forms 16-bit pair sums of weight and
//! activation quants, then the sub-block scales are applied as 16-bit multiplies summed into i32
//! lanes. With VNNI that second step and the accumulation are one `vpdpwssd`; without, it is
//! `vpmaddwd` plus an add. The shared bodies are `#[inline(always)]` and take `VNNI` as a const,
//! so each entry point compiles them with its own target features.

use super::avx2::mins_pairs;
use super::{check_multi, load_i16x16, load_u8x32, Features};
use crate::quant::kquant_search::unpack_scales_mins;
use crate::quant::{BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use std::arch::x86_64::*;

static FEATURES: Features = Features::new(&["avx2", "fma", "f16c", "avx512f", "avx512bw"]);
static FEATURES_VNNI: Features =
    Features::new(&["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni"]);

/// Entry points of one format: a weight row against 1..=4 activation rows (the weight unpacking
/// is shared; each row's arithmetic is exactly the one-row dot's), and the one-row dot.
macro_rules! entry_points {
    ($block:ty, $what:literal, $plain:ident, $vnni:ident, $plain_multi:ident, $vnni_multi:ident,
     $body:ident) => {
        pub(super) fn $plain_multi(w: &[$block], xs: &[&[BlockQ8_K]], out: &mut [f32]) {
            check_multi($what, w.len(), xs, out);
            FEATURES.require();
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw")]
            fn run(w: &[$block], xs: &[&[BlockQ8_K]], out: &mut [f32]) {
                // SAFETY: this function has the features the body needs.
                unsafe { by_acts!($body, [false,], w, xs, out) }
            }
            // SAFETY: `require` checked that this CPU has the features `run` enables.
            unsafe { run(w, xs, out) }
        }

        pub(super) fn $vnni_multi(w: &[$block], xs: &[&[BlockQ8_K]], out: &mut [f32]) {
            check_multi($what, w.len(), xs, out);
            FEATURES_VNNI.require();
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vnni")]
            fn run(w: &[$block], xs: &[&[BlockQ8_K]], out: &mut [f32]) {
                // SAFETY: this function has the features the body needs.
                unsafe { by_acts!($body, [true,], w, xs, out) }
            }
            // SAFETY: `require` checked that this CPU has the features `run` enables.
            unsafe { run(w, xs, out) }
        }

        pub(super) fn $plain(w: &[$block], x: &[BlockQ8_K]) -> f32 {
            let mut out = [0.0];
            $plain_multi(w, &[x], &mut out);
            out[0]
        }

        pub(super) fn $vnni(w: &[$block], x: &[BlockQ8_K]) -> f32 {
            let mut out = [0.0];
            $vnni_multi(w, &[x], &mut out);
            out[0]
        }
    };
}

entry_points!(
    BlockQ4_K,
    "Q4_K",
    dot_q4_k,
    dot_q4_k_vnni,
    multi_q4_k,
    multi_q4_k_vnni,
    q4_k
);
entry_points!(
    BlockQ5_K,
    "Q5_K",
    dot_q5_k,
    dot_q5_k_vnni,
    multi_q5_k,
    multi_q5_k_vnni,
    q5_k
);
entry_points!(
    BlockQ6_K,
    "Q6_K",
    dot_q6_k,
    dot_q6_k_vnni,
    multi_q6_k,
    multi_q6_k_vnni,
    q6_k
);

pub(super) fn quantize_q8_k(src: &[f32], out: &mut [BlockQ8_K]) {
    assert_eq!(src.len(), out.len() * QK_K, "Q8_K quantize: input length");
    FEATURES.require();
    // SAFETY: `require` checked the features `q8_k` enables.
    unsafe { q8_k(src, out) }
}

/// `acc + Σ (pairs of i16 products)` into i32 lanes.
///
/// # Safety
/// The CPU must have AVX-512 F and BW, and VNNI when `VNNI`.
#[inline(always)]
unsafe fn madd_acc<const VNNI: bool>(acc: __m512i, p: __m512i, s: __m512i) -> __m512i {
    if VNNI {
        _mm512_dpwssd_epi32(acc, p, s)
    } else {
        _mm512_add_epi32(acc, _mm512_madd_epi16(p, s))
    }
}

/// 64 bytes from a reference to a 64-byte value (an array).
///
/// # Safety
/// The CPU must have AVX-512 F.
#[inline(always)]
unsafe fn load64<T: bytemuck::Pod>(v: &T) -> __m512i {
    const { assert!(std::mem::size_of::<T>() == 64) };
    // The reference covers the 64 bytes read; loadu needs no alignment.
    _mm512_loadu_si512((v as *const T).cast())
}

/// Lane indices for `_mm512_permutexvar_epi16` that spread the 8 i16 scales of Q4_K / Q5_K:
/// entry `k` gives lanes 0..16 scale `a` and lanes 16..32 scale `a + 2`, `a = 4·(k/2) + k%2`.
/// Entries `2g` and `2g + 1` serve the low and the high nibbles of values `128g .. 128g + 128`.
const AFFINE_LANES: [[u16; 32]; 4] = {
    let mut t = [[0u16; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let a = 4 * (k / 2) + k % 2;
        let mut i = 0;
        while i < 32 {
            t[k][i] = (a + if i < 16 { 0 } else { 2 }) as u16;
            i += 1;
        }
        k += 1;
    }
    t
};

/// Lane indices that give each 128-bit lane (8 i16 lanes: one Q6_K sub-block of 16 values) its
/// scale: entry `k` picks scales `4k .. 4k + 4`.
const Q6_LANES: [[u16; 32]; 4] = {
    let mut t = [[0u16; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut i = 0;
        while i < 32 {
            t[k][i] = (4 * k + i / 8) as u16;
            i += 1;
        }
        k += 1;
    }
    t
};

/// The low and the high nibbles of 64 bytes.
///
/// # Safety
/// The CPU must have AVX-512 F and BW.
#[inline(always)]
unsafe fn nibbles(q: __m512i) -> (__m512i, __m512i) {
    let low4 = _mm512_set1_epi8(0x0F);
    (
        _mm512_and_si512(q, low4),
        _mm512_and_si512(_mm512_srli_epi16::<4>(q), low4),
    )
}

/// The weight side of a Q4_K / Q5_K block, shared by every activation row: the sub-block scales
/// spread over the i16 lanes of each quants register (`[g][low, high]`, see [`affine_dot`]), and
/// the mins.
struct AffineScales {
    lanes: [[__m512i; 2]; 2],
    /// The mins as i16 pairs for the bsums (see [`mins_pairs`]).
    mins: __m256i,
}

/// # Safety
/// The CPU must have AVX-512 F and BW.
#[inline(always)]
unsafe fn affine_scales(scales: &[u8; 12]) -> AffineScales {
    let (sc, mins) = unpack_scales_mins(scales);
    // Scales as i16 in lanes 0..8.
    let sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(i64::from_le_bytes(sc))));
    let spread = |k: usize| _mm512_permutexvar_epi16(load64(&AFFINE_LANES[k]), sc16);
    AffineScales {
        lanes: [[spread(0), spread(1)], [spread(2), spread(3)]],
        mins: mins_pairs(mins),
    }
}

/// One Q4_K / Q5_K block times one activation block, added into `acc`. `quants[g]` holds the
/// quants of values `128g .. 128g + 128` as `(low, high)`: `low` = sub-blocks 4g and 4g+2,
/// `high` = 4g+1 and 4g+3 (32 values each, in that order).
///
/// # Safety
/// As [`madd_acc`].
#[inline(always)]
unsafe fn affine_dot<const VNNI: bool>(
    s: &AffineScales,
    d: f32,
    dmin: f32,
    a: &BlockQ8_K,
    quants: &[(__m512i, __m512i); 2],
    acc: __m512,
) -> __m512 {
    let ys = a.qs.as_chunks::<64>().0;
    let mut isum = _mm512_setzero_si512();
    for g in 0..2 {
        let (lo, hi) = quants[g];
        let y0 = load64(&ys[2 * g]); // sub-blocks 4g, 4g+1
        let y1 = load64(&ys[2 * g + 1]); // sub-blocks 4g+2, 4g+3
        let ylo = _mm512_shuffle_i64x2::<0x44>(y0, y1); // 4g, 4g+2
        let yhi = _mm512_shuffle_i64x2::<0xEE>(y0, y1); // 4g+1, 4g+3
        isum = madd_acc::<VNNI>(isum, _mm512_maddubs_epi16(lo, ylo), s.lanes[g][0]);
        isum = madd_acc::<VNNI>(isum, _mm512_maddubs_epi16(hi, yhi), s.lanes[g][1]);
    }
    let msum = _mm512_zextsi256_si512(_mm256_madd_epi16(load_i16x16(&a.bsums), s.mins));
    let acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(isum), acc);
    _mm512_fnmadd_ps(_mm512_set1_ps(dmin), _mm512_cvtepi32_ps(msum), acc)
}

/// Two f16 values as f32 with one F16C conversion (`half`'s `to_f32_const` is a software path,
/// and its `to_f32` asks the CPU for F16C at every call).
///
/// # Safety
/// The CPU must have F16C.
#[inline(always)]
unsafe fn f16_pair(a: half::f16, b: half::f16) -> (f32, f32) {
    let bits = u32::from(a.to_bits()) | u32::from(b.to_bits()) << 16;
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
}

/// The horizontal sums of `N` accumulators.
///
/// # Safety
/// The CPU must have AVX-512 F.
#[inline(always)]
unsafe fn reduce<const N: usize>(acc: [__m512; N]) -> [f32; N] {
    let mut out = [0.0f32; N];
    for (o, a) in out.iter_mut().zip(acc) {
        *o = _mm512_reduce_add_ps(a);
    }
    out
}

/// # Safety
/// As [`madd_acc`].
#[inline(always)]
unsafe fn q4_k<const VNNI: bool, const N: usize>(
    w: &[BlockQ4_K],
    xs: &[&[BlockQ8_K]; N],
) -> [f32; N] {
    let mut acc = [_mm512_setzero_ps(); N];
    for (i, b) in w.iter().enumerate() {
        let qs = b.qs.as_chunks::<64>().0;
        let quants = [nibbles(load64(&qs[0])), nibbles(load64(&qs[1]))];
        let scales = affine_scales(&b.scales);
        let (bd, bmin) = f16_pair(b.d, b.dmin);
        for (acc, x) in acc.iter_mut().zip(xs) {
            let a = &x[i];
            *acc = affine_dot::<VNNI>(&scales, a.d * bd, a.d * bmin, a, &quants, *acc);
        }
    }
    reduce(acc)
}

/// # Safety
/// As [`madd_acc`].
#[inline(always)]
unsafe fn q5_k<const VNNI: bool, const N: usize>(
    w: &[BlockQ5_K],
    xs: &[&[BlockQ8_K]; N],
) -> [f32; N] {
    let bit0 = _mm512_set1_epi8(1);
    let bit1 = _mm512_set1_epi8(2);
    let mut acc = [_mm512_setzero_ps(); N];
    for (i, b) in w.iter().enumerate() {
        // The low 256 bits serve chunk 2g (qh bits 4g, 4g+1), the high 256 bits chunk 2g+1
        // (bits 4g+2, 4g+3): start the high half two bits further along.
        let qh = _mm512_broadcast_i64x4(load_u8x32(&b.qh));
        let mut qh = _mm512_mask_srli_epi16::<2>(qh, 0xFFFF_0000, qh);
        let qs = b.qs.as_chunks::<64>().0;
        let mut quants = [(_mm512_setzero_si512(), _mm512_setzero_si512()); 2];
        for g in 0..2 {
            let (lo, hi) = nibbles(load64(&qs[g]));
            // Bits 0 and 1 of each byte move to bit 4; what 16-bit shifts carry in from the
            // neighbour byte lands above bit 1 and is masked off.
            let lo = _mm512_or_si512(lo, _mm512_slli_epi16::<4>(_mm512_and_si512(qh, bit0)));
            let hi = _mm512_or_si512(hi, _mm512_slli_epi16::<3>(_mm512_and_si512(qh, bit1)));
            qh = _mm512_srli_epi16::<4>(qh);
            quants[g] = (lo, hi);
        }
        let scales = affine_scales(&b.scales);
        let (bd, bmin) = f16_pair(b.d, b.dmin);
        for (acc, x) in acc.iter_mut().zip(xs) {
            let a = &x[i];
            *acc = affine_dot::<VNNI>(&scales, a.d * bd, a.d * bmin, a, &quants, *acc);
        }
    }
    reduce(acc)
}

/// # Safety
/// As [`madd_acc`].
#[inline(always)]
unsafe fn q6_k<const VNNI: bool, const N: usize>(
    w: &[BlockQ6_K],
    xs: &[&[BlockQ8_K]; N],
) -> [f32; N] {
    let low4 = _mm512_set1_epi8(0x0F);
    let top2 = _mm512_set1_epi8(0x30);
    let mut acc = [_mm512_setzero_ps(); N];
    for (i, b) in w.iter().enumerate() {
        let ql = b.ql.as_chunks::<64>().0;
        let qh = b.qh.as_chunks::<32>().0;
        // All 16 scales as i16 in lanes 0..16.
        let sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.scales.as_ptr().cast()));
        let sc16 = _mm512_castsi256_si512(sc_all);
        let bd = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(b.d.to_bits().into())));
        // [2 halves][values +0..64, +64..128]: quants and the scales of their i16 lanes.
        let mut quants = [[_mm512_setzero_si512(); 2]; 2];
        let mut lanes = [[_mm512_setzero_si512(); 2]; 2];
        for h in 0..2 {
            // ql = [low bits of values 128h + 0..32 and + 64..96 | + 32..64 and + 96..128].
            let l = load64(&ql[h]);
            let hb = _mm512_broadcast_i64x4(load_u8x32(&qh[h]));
            // Values 128h + 0..64: top bits at qh bits 0–1 (first 32) and 2–3 (next 32).
            let up = _mm512_slli_epi16::<2>(hb);
            let up = _mm512_mask_slli_epi16::<2>(up, 0x0000_FFFF, up);
            let q_a = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_and_si512(up, top2));
            // Values 128h + 64..128: top bits at qh bits 4–5 and 6–7.
            let down = _mm512_mask_srli_epi16::<2>(hb, 0xFFFF_0000, hb);
            let q_b = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16::<4>(l), low4),
                _mm512_and_si512(down, top2),
            );
            quants[h] = [q_a, q_b];
            // Each 128-bit lane is one sub-block of 16 values: 8h + (0..4), then 8h + 4 + (0..4).
            lanes[h] = [
                _mm512_permutexvar_epi16(load64(&Q6_LANES[2 * h]), sc16),
                _mm512_permutexvar_epi16(load64(&Q6_LANES[2 * h + 1]), sc16),
            ];
        }
        for (acc, x) in acc.iter_mut().zip(xs) {
            let a = &x[i];
            let ys = a.qs.as_chunks::<64>().0;
            let mut isum = _mm512_setzero_si512();
            for h in 0..2 {
                let [q_a, q_b] = quants[h];
                let [s_a, s_b] = lanes[h];
                isum = madd_acc::<VNNI>(isum, _mm512_maddubs_epi16(q_a, load64(&ys[2 * h])), s_a);
                isum =
                    madd_acc::<VNNI>(isum, _mm512_maddubs_epi16(q_b, load64(&ys[2 * h + 1])), s_b);
            }
            // The stored quants are biased by 32: subtract 32·Σ_j sc_j·bsums_j.
            let bias = _mm256_madd_epi16(load_i16x16(&a.bsums), sc_all);
            isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(_mm256_slli_epi32::<5>(bias)));
            *acc = _mm512_fmadd_ps(_mm512_set1_ps(a.d * bd), _mm512_cvtepi32_ps(isum), *acc);
        }
    }
    reduce(acc)
}

/// Quantizes to Q8_K exactly as `quantize_q8_k_scalar` does, 16 values per instruction.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw")]
fn q8_k(src: &[f32], out: &mut [BlockQ8_K]) {
    let zero = _mm512_setzero_si512();
    let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
        let max = signed_absmax(x);
        if max == 0.0 {
            *y = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        let vscale = _mm512_set1_ps(iscale);
        let mut sums = [zero; 4];
        let qs = y.qs.as_chunks_mut::<64>().0;
        for (k, v) in x.as_chunks::<64>().0.iter().enumerate() {
            let v = v.as_chunks::<16>().0;
            let z = _mm512_castsi128_si512(round16(&v[0], vscale));
            let z = _mm512_inserti32x4::<1>(z, round16(&v[1], vscale));
            let z = _mm512_inserti32x4::<2>(z, round16(&v[2], vscale));
            let z = _mm512_inserti32x4::<3>(z, round16(&v[3], vscale));
            // SAFETY: `qs[k]` covers 64 writable bytes; storeu needs no alignment.
            unsafe { _mm512_storeu_si512(qs[k].as_mut_ptr().cast(), z) };
            // Sums of 8 bytes each, made unsigned by flipping the sign bits (+128 per byte).
            sums[k] = _mm512_sad_epu8(_mm512_xor_si512(z, _mm512_set1_epi8(-128)), zero);
        }
        // Groups of 16 are pairs of adjacent 8-byte sums; remove the 16·128 bias.
        for (half, out) in y.bsums.as_chunks_mut::<8>().0.iter_mut().enumerate() {
            let (s0, s1) = (sums[2 * half], sums[2 * half + 1]);
            let g = _mm512_add_epi64(
                _mm512_permutex2var_epi64(s0, even, s1),
                _mm512_permutex2var_epi64(s0, odd, s1),
            );
            let g = _mm512_sub_epi64(g, _mm512_set1_epi64(16 * 128));
            super::store_i16x8(out, _mm512_cvtepi64_epi16(g));
        }
        y.d = 1.0 / iscale;
    }
}

/// 16 floats from an array reference.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_f32x16(v: &[f32; 16]) -> __m512 {
    // SAFETY: `v` covers 64 readable bytes; no alignment needed.
    unsafe { _mm512_loadu_ps(v.as_ptr()) }
}

/// The value of largest magnitude (the first one on ties; NaNs never win), or 0 if all are 0.
#[inline]
#[target_feature(enable = "avx512f")]
fn signed_absmax(x: &[f32; QK_K]) -> f32 {
    // max_ps returns its second operand when the first is NaN: NaNs are skipped, as by the
    // scalar `>` comparison.
    let mut m = [_mm512_setzero_ps(); 4];
    for v in x.as_chunks::<64>().0 {
        for (m, v) in m.iter_mut().zip(v.as_chunks::<16>().0) {
            *m = _mm512_max_ps(_mm512_abs_ps(load_f32x16(v)), *m);
        }
    }
    let amax = _mm512_reduce_max_ps(_mm512_max_ps(
        _mm512_max_ps(m[0], m[1]),
        _mm512_max_ps(m[2], m[3]),
    ));
    if amax == 0.0 {
        return 0.0;
    }
    let target = _mm512_set1_ps(amax);
    for v in x.as_chunks::<16>().0 {
        let bits = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(load_f32x16(v)), target);
        if bits != 0 {
            return v[bits.trailing_zeros() as usize];
        }
    }
    amax // not reached: amax is one of the magnitudes
}

/// `clamp(nearest_int(v·scale), −128, 127)` for 16 values, as 16 bytes: adding 1.5·2^23 leaves
/// the rounded integer in the low mantissa bits, exactly as the scalar `nearest_int`.
#[inline]
#[target_feature(enable = "avx512f")]
fn round16(v: &[f32; 16], scale: __m512) -> __m128i {
    let r = _mm512_add_ps(
        _mm512_mul_ps(load_f32x16(v), scale),
        _mm512_set1_ps(12_582_912.0),
    );
    let bits = _mm512_and_si512(_mm512_castps_si512(r), _mm512_set1_epi32(0x007f_ffff));
    let i = _mm512_sub_epi32(bits, _mm512_set1_epi32(0x0040_0000));
    _mm512_cvtepi32_epi8(_mm512_max_epi32(
        _mm512_min_epi32(i, _mm512_set1_epi32(127)),
        _mm512_set1_epi32(-128),
    ))
}
