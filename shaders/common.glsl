// Shared by every kernel that reads a weight matrix: the weight buffer as 32-bit words, and
// readers for the bytes, halves and unaligned words inside it. Blocks are 18, 20, 22, 34 or 210
// bytes, so a block field is often not 4-byte aligned; reading words and shifting needs no
// 8/16-bit storage feature, so these kernels run on any Vulkan 1.1 device.

layout(std430, set = 0, binding = 0) readonly buffer Weights { uint w[]; };

uint byte_at(uint off) {
    return (w[off >> 2] >> ((off & 3u) * 8u)) & 0xFFu;
}

// `off` is even: every 16-bit field of every block sits at an even offset (block sizes are even).
uint u16_at(uint off) {
    return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu;
}

float f16_at(uint off) {
    return unpackHalf2x16(u16_at(off)).x;
}

// Four bytes from any offset, little-endian. The upload pads the buffer to whole words, so the
// second word exists whenever the four bytes reach into it.
uint u32_at(uint off) {
    uint s = (off & 3u) * 8u;
    uint lo = w[off >> 2];
    return s == 0u ? lo : (lo >> s) | (w[(off >> 2) + 1u] << (32u - s));
}

// Byte `i` (0..3) of `word`, as an unsigned value.
uint byte_of(uint word, uint i) {
    return (word >> (i * 8u)) & 0xFFu;
}

// Byte `i` (0..3) of `word`, sign-extended.
int sbyte_of(uint word, uint i) {
    return bitfieldExtract(int(word), int(i * 8u), 8);
}

// Every format file defines BLOCK_VALUES, BLOCK_BYTES and two functions over a block's 16-value
// "parts" (BLOCK_VALUES / 16 of them):
//   void dequant_part(uint block_off, uint p, out float v[16])  the part's values, dequantized
//   uint run_offset(uint p, uint r)  where in the block v[8r .. 8r + 8] sit (r = 0, 1)
// A part is two runs of 8 contiguous values because that is how the 4-bit formats pack them: the
// low nibbles of 8 bytes and the high nibbles of the same bytes.
#if defined(FMT_F32)
#include "formats/f32.glsl"
#elif defined(FMT_F16)
#include "formats/f16.glsl"
#elif defined(FMT_BF16)
#include "formats/bf16.glsl"
#elif defined(FMT_Q8_0)
#include "formats/q8_0.glsl"
#elif defined(FMT_Q4_0)
#include "formats/q4_0.glsl"
#elif defined(FMT_Q4_1)
#include "formats/q4_1.glsl"
#elif defined(FMT_Q5_0)
#include "formats/q5_0.glsl"
#elif defined(FMT_Q5_1)
#include "formats/q5_1.glsl"
#elif defined(FMT_Q4_K)
#include "formats/q4_k.glsl"
#elif defined(FMT_Q5_K)
#include "formats/q5_k.glsl"
#elif defined(FMT_Q6_K)
#include "formats/q6_k.glsl"
#endif

#define PARTS (BLOCK_VALUES / 16u)
