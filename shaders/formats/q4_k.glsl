// Q4_K (src/quant/q4_k.rs): d: f16 @0, dmin: f16 @2, scales: [u8; 12] @4, qs: [u8; 128] @16.
// Group g (0..4) of 64 values reads qs[32g .. 32g + 32]: value 64g + l = d·sc(2g)·(low nibble of
// qs[32g + l]) − dmin·m(2g), value 64g + 32 + l the same with the high nibble and sub-block 2g + 1.
// Part p (0..16): g = p / 4, l = 8(p % 4) .. + 8.
#define BLOCK_VALUES 256u
#define BLOCK_BYTES 144u
#include "kscales.glsl"

void dequant_part(uint b, uint p, out float v[16]) {
    uint g = p >> 2, l0 = 8u * (p & 3u);
    vec4 k = kquant_group(b, g);
    float d0 = k.x, m0 = k.y, d1 = k.z, m1 = k.w;
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint q = u32_at(b + 16u + 32u * g + l0 + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint c = byte_of(q, i);
            v[4u * k + i] = d0 * float(c & 0xFu) - m0;
            v[8u + 4u * k + i] = d1 * float(c >> 4) - m1;
        }
    }
}

uint run_offset(uint p, uint r) {
    return 64u * (p >> 2) + 8u * (p & 3u) + 32u * r;
}
