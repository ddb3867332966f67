// Q6_K (src/quant/q6_k.rs): ql: [u8; 128] @0, qh: [u8; 64] @128, scales: [i8; 16] @192,
// d: f16 @208. Half h (0..2) of 128 values reads ql[64h ..], qh[32h ..], scales[8h ..]; for
// l in 0..32, with s = l / 16:
//   value 128h + l      = d·sc[s]    ·((low nibble of ql[l])       | (qh[l] bits 0–1) << 4) − 32)
//   value 128h + 32 + l = d·sc[s + 2]·((low nibble of ql[l + 32])  | (qh[l] bits 2–3) << 4) − 32)
//   value 128h + 64 + l = d·sc[s + 4]·((high nibble of ql[l])      | (qh[l] bits 4–5) << 4) − 32)
//   value 128h + 96 + l = d·sc[s + 6]·((high nibble of ql[l + 32]) | (qh[l] bits 6–7) << 4) − 32)
// Part p (0..16): h = p / 8, q = p % 8, l = 8(q % 4) .. + 8; q < 4 takes the first and third
// lines (ql[l]), q ≥ 4 the second and fourth (ql[l + 32]).
#define BLOCK_VALUES 256u
#define BLOCK_BYTES 210u

void dequant_part(uint b, uint p, out float v[16]) {
    float d = f16_at(b + 208u);
    uint h = p >> 3, q = p & 7u, l0 = 8u * (q & 3u), pair = q >> 2;
    uint s = l0 >> 4;
    uint sc_off = b + 192u + 8u * h + s + 2u * pair;
    float d_lo = d * float(bitfieldExtract(int(byte_at(sc_off)), 0, 8));
    float d_hi = d * float(bitfieldExtract(int(byte_at(sc_off + 4u)), 0, 8));
    uint shift = 2u * pair;
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint ql = u32_at(b + 64u * h + 32u * pair + l0 + 4u * k);
        uint qh = u32_at(b + 128u + 32u * h + l0 + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint c = byte_of(ql, i), hb = byte_of(qh, i);
            uint lo = (c & 0xFu) | (((hb >> shift) & 3u) << 4);
            uint hi = (c >> 4) | (((hb >> (shift + 4u)) & 3u) << 4);
            v[4u * k + i] = d_lo * (float(lo) - 32.0);
            v[8u + 4u * k + i] = d_hi * (float(hi) - 32.0);
        }
    }
}

uint run_offset(uint p, uint r) {
    uint q = p & 7u;
    return 128u * (p >> 3) + 32u * (q >> 2) + 8u * (q & 3u) + 64u * r;
}
