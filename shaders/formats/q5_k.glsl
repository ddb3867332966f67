// Q5_K (src/quant/q5_k.rs): d: f16 @0, dmin: f16 @2, scales: [u8; 12] @4, qh: [u8; 32] @16,
// qs: [u8; 128] @48. As Q4_K, with a fifth bit per value: value 64g + l takes bit 2g of qh[l],
// value 64g + 32 + l bit 2g + 1.
// Part p (0..16): g = p / 4, l = 8(p % 4) .. + 8.
#define BLOCK_VALUES 256u
#define BLOCK_BYTES 176u
#include "kscales.glsl"

void dequant_part(uint b, uint p, out float v[16]) {
    uint g = p >> 2, l0 = 8u * (p & 3u);
    vec4 k = kquant_group(b, g);
    float d0 = k.x, m0 = k.y, d1 = k.z, m1 = k.w;
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint q = u32_at(b + 48u + 32u * g + l0 + 4u * k);
        uint h = u32_at(b + 16u + l0 + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint c = byte_of(q, i), hb = byte_of(h, i);
            uint lo = (c & 0xFu) | (((hb >> (2u * g)) & 1u) << 4);
            uint hi = (c >> 4) | (((hb >> (2u * g + 1u)) & 1u) << 4);
            v[4u * k + i] = d0 * float(lo) - m0;
            v[8u + 4u * k + i] = d1 * float(hi) - m1;
        }
    }
}

uint run_offset(uint p, uint r) {
    return 64u * (p >> 2) + 8u * (p & 3u) + 32u * r;
}
