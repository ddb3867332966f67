// The 6-bit scale and min of sub-block j (0..8) of a Q4_K/Q5_K block whose 12 scale bytes start
// at `off` (src/quant/kquant_search.rs, `unpack_scales_mins`).
uvec2 scale_min_k4(uint off, uint j) {
    if (j < 4u) {
        return uvec2(byte_at(off + j) & 63u, byte_at(off + j + 4u) & 63u);
    }
    uint sc = (byte_at(off + j + 4u) & 0xFu) | ((byte_at(off + j - 4u) >> 6) << 4);
    uint mn = (byte_at(off + j + 4u) >> 4) | ((byte_at(off + j) >> 6) << 4);
    return uvec2(sc, mn);
}
