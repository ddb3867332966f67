// Q8_0 (src/quant/q8_0.rs): d: f16 @0, qs: [i8; 32] @2. value j = d * qs[j].
// Part p holds values 16p .. 16p + 16.
#define BLOCK_VALUES 32u
#define BLOCK_BYTES 34u

void dequant_part(uint b, uint p, out float v[16]) {
    float d = f16_at(b);
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        uint q = u32_at(b + 2u + 16u * p + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            v[4u * k + i] = d * float(sbyte_of(q, i));
        }
    }
}

uint run_offset(uint p, uint r) {
    return 16u * p + 8u * r;
}
