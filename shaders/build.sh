#!/usr/bin/env bash
# Regenerates the committed SPIR-V in shaders/spv/ from the GLSL beside this script, with glslc
# (Debian's `glslc` package). `cargo build` embeds the .spv files and never runs this; .ci/run
# runs it and fails when the result differs from what is committed.
set -euo pipefail
cd "$(dirname "$0")"
command -v glslc >/dev/null || { echo "shaders/build.sh: glslc not found (apt install glslc)" >&2; exit 1; }

out=spv
rm -rf "$out.new" && mkdir "$out.new"
compile() { # output name, source, defines...
    local name=$1 src=$2
    shift 2
    glslc --target-env=vulkan1.1 -fshader-stage=compute -O "$@" "$src" -o "$out.new/$name.spv"
}

formats="f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k"
for f in $formats; do
    def="-DFMT_$(echo "$f" | tr a-z A-Z)"
    compile "matvec_$f" matvec.comp "$def" -DUSE_SUBGROUP=0
    compile "matvec_sg_$f" matvec.comp "$def" -DUSE_SUBGROUP=1
    compile "matmul_$f" matmul.comp "$def"
done
compile swiglu swiglu.comp
compile probe probe.comp

rm -rf "$out" && mv "$out.new" "$out"
echo "shaders/build.sh: $(ls "$out" | wc -l) SPIR-V modules in shaders/$out"
