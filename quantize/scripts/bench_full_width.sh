#!/usr/bin/env bash
# Times HF bf16 → Q4_K_M on a full-width synthetic Mixtral 8x7B checkpoint (real shapes,
# LAYERS layers, sharded with an index), with peak RSS from /usr/bin/time -v.
#   quantize/scripts/bench_full_width.sh [DIR] [LAYERS] [TYPE]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-/tmp/tandem-bench-mixtral}
LAYERS=${2:-2}
TYPE=${3:-q4_k_m}

cargo build --release -p tandem-quantize
if [ ! -f "$DIR/model.safetensors.index.json" ]; then
    TANDEM_BENCH_DIR="$DIR" TANDEM_BENCH_LAYERS="$LAYERS" \
        cargo test --release --test quantize_bench -- --ignored --nocapture
fi
du -sh "$DIR"
OUT="$DIR.$TYPE.gguf"
/usr/bin/time -v target/release/tandem-quantize "$DIR" "$OUT" --type "$TYPE" --force --quiet 2>&1 \
    | grep -E '^input|Elapsed|Maximum resident|Percent of CPU'
ls -l "$OUT"
