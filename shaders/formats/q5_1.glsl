// Q5_1 (src/quant/q5_1.rs): d: f16 @0, m: f16 @2, qh: u32 @4, qs: [u8; 16] @8. value j < 16 =
// d * (low nibble of qs[j] | bit j << 4) + m; value j + 16 = d * (high nibble | bit j + 16 << 4) + m.
// Part p reads qs[8p .. 8p + 8], as in Q4_0.
#define BLOCK_VALUES 32u
#define BLOCK_BYTES 24u

void dequant_part(uint b, uint p, out float v[16]) {
    vec2 dm = unpackHalf2x16(u32_at(b));
    uint qh = u32_at(b + 4u);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint q = u32_at(b + 8u + 8u * p + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint j = 8u * p + 4u * k + i;
            uint c = byte_of(q, i);
            uint lo = (c & 0xFu) | (((qh >> j) & 1u) << 4);
            uint hi = (c >> 4) | (((qh >> (j + 16u)) & 1u) << 4);
            v[4u * k + i] = dm.x * float(lo) + dm.y;
            v[8u + 4u * k + i] = dm.x * float(hi) + dm.y;
        }
    }
}

uint run_offset(uint p, uint r) {
    return 8u * p + 16u * r;
}
