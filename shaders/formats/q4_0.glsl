// Q4_0 (src/quant/q4_0.rs): d: f16 @0, qs: [u8; 16] @2. value j < 16 = d * (low nibble of
// qs[j] - 8); value j + 16 = d * (high nibble of qs[j] - 8).
// Part p reads qs[8p .. 8p + 8]: values 8p .. 8p + 8 (low) and 16 + 8p .. 16 + 8p + 8 (high).
#define BLOCK_VALUES 32u
#define BLOCK_BYTES 18u

void dequant_part(uint b, uint p, out float v[16]) {
    float d = f16_at(b);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint q = u32_at(b + 2u + 8u * p + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint c = byte_of(q, i);
            v[4u * k + i] = d * (float(c & 0xFu) - 8.0);
            v[8u + 4u * k + i] = d * (float(c >> 4) - 8.0);
        }
    }
}

uint run_offset(uint p, uint r) {
    return 8u * p + 16u * r;
}
