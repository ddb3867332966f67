// F32: plain floats. A "block" here is 16 values; rows of
// other lengths are stored zero-padded to a multiple of 16 (see PAD_COLS).
#define BLOCK_VALUES 16u
// x has only `x_cols` values per row: the kernels read none past them.
#define PAD_COLS 1
#define BLOCK_BYTES 64u

void dequant_part(uint b, uint p, out float v[16]) {
    [[unroll]] for (uint i = 0u; i < 16u; i++) {
        v[i] = uintBitsToFloat(w[(b >> 2) + i]);
    }
}

uint run_offset(uint p, uint r) {
    return 8u * r;
}
