// Q5_0 (src/quant/q5_0.rs): d: f16 @0, qh: u32 @2 (bit j is value j's fifth bit),
// qs: [u8; 16] @6. value j < 16 = d * ((low nibble of qs[j] | bit j << 4) - 16); value j + 16 =
// d * ((high nibble of qs[j] | bit j + 16 << 4) - 16).
// Part p reads qs[8p .. 8p + 8], as in Q4_0.
#define BLOCK_VALUES 32u
#define BLOCK_BYTES 22u

void dequant_part(uint b, uint p, out float v[16]) {
    float d = f16_at(b);
    uint qh = u32_at(b + 2u);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint q = u32_at(b + 6u + 8u * p + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint j = 8u * p + 4u * k + i;
            uint c = byte_of(q, i);
            uint lo = (c & 0xFu) | (((qh >> j) & 1u) << 4);
            uint hi = (c >> 4) | (((qh >> (j + 16u)) & 1u) << 4);
            v[4u * k + i] = d * (float(lo) - 16.0);
            v[8u + 4u * k + i] = d * (float(hi) - 16.0);
        }
    }
}

uint run_offset(uint p, uint r) {
    return 8u * p + 16u * r;
}
