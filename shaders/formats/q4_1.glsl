// Q4_1 (src/quant/q4_1.rs): d: f16 @0, m: f16 @2, qs: [u8; 16] @4. value j < 16 =
// d * (low nibble of qs[j]) + m; value j + 16 = d * (high nibble of qs[j]) + m.
// Part p reads qs[8p .. 8p + 8], as in Q4_0.
#define BLOCK_VALUES 32u
#define BLOCK_BYTES 20u

void dequant_part(uint b, uint p, out float v[16]) {
    vec2 dm = unpackHalf2x16(u32_at(b));
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint q = u32_at(b + 4u + 8u * p + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint c = byte_of(q, i);
            v[4u * k + i] = dm.x * float(c & 0xFu) + dm.y;
            v[8u + 4u * k + i] = dm.x * float(c >> 4) + dm.y;
        }
    }
}

uint run_offset(uint p, uint r) {
    return 8u * p + 16u * r;
}
