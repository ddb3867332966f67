// F16: IEEE half floats, 16 to a "block"; rows of other
// lengths are stored zero-padded to a multiple of 16 (see PAD_COLS).
#define BLOCK_VALUES 16u
// x has only `x_cols` values per row: the kernels read none past them.
#define PAD_COLS 1
#define BLOCK_BYTES 32u

void dequant_part(uint b, uint p, out float v[16]) {
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        vec2 h = unpackHalf2x16(w[(b >> 2) + i]);
        v[2u * i] = h.x;
        v[2u * i + 1u] = h.y;
    }
}

uint run_offset(uint p, uint r) {
    return 8u * r;
}
