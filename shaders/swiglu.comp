#version 450
// The middle of an expert's FFN: g = silu(g) · u · weight[row], for n rows of n_ff values. The
// router weight of each row is applied here, before the (linear) down projection, so the expert's
// output arrives already weighted at no extra pass.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) buffer Gate { float g[]; };        // [n, n_ff]
layout(std430, set = 0, binding = 1) readonly buffer Up { float u[]; }; // [n, n_ff]
layout(std430, set = 0, binding = 2) readonly buffer Weight { float weight[]; }; // [n]

layout(push_constant) uniform Push {
    uint n_ff;  // values per row
    uint count; // n · n_ff
    uint g_off; // first float of row 0 in g and u
    uint w_off; // the weight of row 0
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= pc.count) {
        return;
    }
    float a = g[pc.g_off + i];
    float silu = a / (1.0 + exp(-a));
    g[pc.g_off + i] = silu * u[pc.g_off + i] * weight[pc.w_off + i / pc.n_ff];
}
