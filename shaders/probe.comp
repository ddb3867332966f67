#version 450
// The device's read bandwidth: each thread sums 16-byte words of a large buffer, striding by the
// whole grid so that neighbouring threads read neighbouring words; one sum per workgroup is
// written so that the reads cannot be dropped.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Push {
    uint words; // uvec4 words in src
} pc;

shared uint sums[256];

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    uvec4 s = uvec4(0u);
    for (uint i = gl_GlobalInvocationID.x; i < pc.words; i += stride) {
        s ^= src[i];
    }
    uint tid = gl_LocalInvocationID.x;
    sums[tid] = s.x ^ s.y ^ s.z ^ s.w;
    barrier();
    if (tid == 0u) {
        uint t = 0u;
        for (uint k = 0u; k < 256u; k++) {
            t ^= sums[k];
        }
        dst[gl_WorkGroupID.x] = t;
    }
}
