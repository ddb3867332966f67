#version 450
// Y = X · Wᵀ for the many rows of X routed to one expert (prefill): each workgroup computes a
// tile of 64 weight rows × 32 rows of X. Per step along K, every thread dequantizes one 16-value
// part of one weight row into shared memory and the workgroup loads the matching 16 values of 32
// rows of X beside it; then each thread accumulates its 4 × 8 outputs from shared memory. Each
// weight part is dequantized once per 32 rows of X instead of once per row.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

#include "common.glsl"

#define BM 64u // weight rows per tile = threads per workgroup
#define BN 32u // rows of X per tile
#define TM 4u  // weight rows per thread
#define TN 8u  // rows of X per thread

layout(local_size_x = 64) in;

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

shared float wt[BM][17]; // one part per weight row; 17 staggers the banks
shared float xt[BN][17]; // the same 16 positions of each row of X

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint row0 = gl_WorkGroupID.x * BM;
    uint col0 = gl_WorkGroupID.y * BN;
    // This thread's outputs: weight rows rm .. rm + TM, rows of X cn .. cn + TN (tile-relative).
    uint rm = (tid % (BM / TM)) * TM;
    uint cn = (tid / (BM / TM)) * TN;

    uint blocks = pc.cols / BLOCK_VALUES;
    uint my_row = row0 + tid;
    uint row_off = my_row * blocks * BLOCK_BYTES;

    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; i++) {
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            acc[i][j] = 0.0;
        }
    }
    float v[16];
    for (uint part = 0u; part < blocks * PARTS; part++) {
        uint blk = part / PARTS, p = part % PARTS;
        if (my_row < pc.rows) {
            dequant_part(row_off + blk * BLOCK_BYTES, p, v);
        } else {
            [[unroll]] for (uint i = 0u; i < 16u; i++) {
                v[i] = 0.0;
            }
        }
        [[unroll]] for (uint i = 0u; i < 16u; i++) {
            wt[tid][i] = v[i];
        }
        // 32 rows × 16 values of X, 8 per thread: thread t loads row t / 2, one run of 8.
        uint xr = tid >> 1, run = tid & 1u;
        uint xi = blk * BLOCK_VALUES + run_offset(p, run);
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            xt[xr][8u * run + i] = col0 + xr < pc.n ? x_at(pc.x_off + (col0 + xr) * pc.x_stride, xi + i) : 0.0;
        }
        barrier();
        [[unroll]] for (uint k = 0u; k < 16u; k++) {
            float a[TM];
            [[unroll]] for (uint i = 0u; i < TM; i++) {
                a[i] = wt[rm + i][k];
            }
            [[unroll]] for (uint j = 0u; j < TN; j++) {
                float b = xt[cn + j][k];
                [[unroll]] for (uint i = 0u; i < TM; i++) {
                    acc[i][j] += a[i] * b;
                }
            }
        }
        barrier();
    }
    [[unroll]] for (uint j = 0u; j < TN; j++) {
        uint c = col0 + cn + j;
        [[unroll]] for (uint i = 0u; i < TM; i++) {
            uint r = row0 + rm + i;
            if (c < pc.n && r < pc.rows) {
                y[pc.y_off + c * pc.y_stride + r] = acc[i][j];
            }
        }
    }
}
