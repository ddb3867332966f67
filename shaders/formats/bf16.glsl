// BF16: the top 16 bits of an f32, 16 to a "block"; rows of other
// lengths are stored zero-padded to a multiple of 16 (see PAD_COLS).
#define BLOCK_VALUES 16u
// x has only `x_cols` values per row: the kernels read none past them.
#define PAD_COLS 1
#define BLOCK_BYTES 32u

void dequant_part(uint b, uint p, out float v[16]) {
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint pair = w[(b >> 2) + i];
        v[2u * i] = uintBitsToFloat(pair << 16);
        v[2u * i + 1u] = uintBitsToFloat(pair & 0xFFFF0000u);
    }
}

uint run_offset(uint p, uint r) {
    return 8u * r;
}
