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

// The scales and offsets of sub-blocks 2g and 2g + 1 of the Q4_K/Q5_K block at `b` (d and dmin at
// b, b + 2; the 12 scale bytes at b + 4): value = d_j · q − m_j, as vec4(d0, m0, d1, m1).
vec4 kquant_group(uint b, uint g) {
    vec2 dm = unpackHalf2x16(u32_at(b));
    uvec2 s0 = scale_min_k4(b + 4u, 2u * g);
    uvec2 s1 = scale_min_k4(b + 4u, 2u * g + 1u);
    return vec4(dm.x * float(s0.x), dm.y * float(s0.y), dm.x * float(s1.x), dm.y * float(s1.y));
}
