#version 450
// y = x · Wᵀ for up to 8 activation rows at a time (decode, and small batches): one workgroup per
// weight row, its threads striding over the row's 16-value parts, so each weight byte is read once
// for all the rows of x. Built once per weight format (-DFMT_*), and with -DUSE_SUBGROUP=1 for
// devices with subgroup arithmetic; without it the workgroup reduces through shared memory.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#include "common.glsl"

#define MAX_COLS 8u
#define MAX_WG 256u

layout(local_size_x_id = 0) in; // a power of two, at most MAX_WG

layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };  // [n, x_stride]
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; }; // [n, y_stride]

layout(push_constant) uniform Push {
    uint rows;     // weight rows in this buffer
    uint cols;     // values per stored weight row (a multiple of BLOCK_VALUES)
    uint n;        // rows of x
    uint x_off;    // first float of x's row 0
    uint x_stride; // floats from one row of x to the next
    uint y_off;    // where (x row 0, weight row 0) goes in y
    uint y_stride; // floats from one row of y to the next
    uint x_cols;   // values per row of x: cols, or fewer where rows were padded (PAD_COLS)
} pc;

// x's value `i` of the row starting at `xr`; zero past the row where the weights were padded.
float x_at(uint xr, uint i) {
#ifdef PAD_COLS
    return i < pc.x_cols ? x[xr + i] : 0.0;
#else
    return x[xr + i];
#endif
}

// Per column, one partial sum per subgroup (or per thread, without subgroups).
shared float partial[MAX_COLS][MAX_WG];

void main() {
    uint row = gl_WorkGroupID.x;
    uint col0 = gl_WorkGroupID.y * MAX_COLS;
    uint ncols = min(MAX_COLS, pc.n - col0);
    uint tid = gl_LocalInvocationID.x;
    uint wg = gl_WorkGroupSize.x;

    uint blocks = pc.cols / BLOCK_VALUES;
    uint row_off = row * blocks * BLOCK_BYTES;
    float acc[MAX_COLS];
    [[unroll]] for (uint c = 0u; c < MAX_COLS; c++) {
        acc[c] = 0.0;
    }
    float v[16];
    for (uint part = tid; part < blocks * PARTS; part += wg) {
        uint blk = part / PARTS, p = part % PARTS;
        dequant_part(row_off + blk * BLOCK_BYTES, p, v);
        uint x0 = blk * BLOCK_VALUES + run_offset(p, 0u);
        uint x1 = blk * BLOCK_VALUES + run_offset(p, 1u);
        [[unroll]] for (uint c = 0u; c < MAX_COLS; c++) {
            if (c < ncols) {
                uint xr = pc.x_off + (col0 + c) * pc.x_stride;
                float s = acc[c];
                [[unroll]] for (uint i = 0u; i < 8u; i++) {
                    s += v[i] * x_at(xr, x0 + i);
                    s += v[8u + i] * x_at(xr, x1 + i);
                }
                acc[c] = s;
            }
        }
    }

#if USE_SUBGROUP
    [[unroll]] for (uint c = 0u; c < MAX_COLS; c++) {
        acc[c] = subgroupAdd(acc[c]);
    }
    if (gl_SubgroupInvocationID == 0u) {
        [[unroll]] for (uint c = 0u; c < MAX_COLS; c++) {
            partial[c][gl_SubgroupID] = acc[c];
        }
    }
    barrier();
    if (tid == 0u) {
        for (uint c = 0u; c < ncols; c++) {
            float s = 0.0;
            for (uint g = 0u; g < gl_NumSubgroups; g++) {
                s += partial[c][g];
            }
            y[pc.y_off + (col0 + c) * pc.y_stride + row] = s;
        }
    }
#else
    [[unroll]] for (uint c = 0u; c < MAX_COLS; c++) {
        partial[c][tid] = acc[c];
    }
    barrier();
    for (uint half_wg = wg >> 1; half_wg > 0u; half_wg >>= 1) {
        if (tid < half_wg) {
            [[unroll]] for (uint c = 0u; c < MAX_COLS; c++) {
                partial[c][tid] += partial[c][tid + half_wg];
            }
        }
        barrier();
    }
    if (tid == 0u) {
        for (uint c = 0u; c < ncols; c++) {
            y[pc.y_off + (col0 + c) * pc.y_stride + row] = partial[c][0];
        }
    }
#endif
}
