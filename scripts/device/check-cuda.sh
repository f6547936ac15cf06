#!/usr/bin/env bash
# The one GPU check of the CUDA backend, run on the device machine from the repository root after
# scripts/device/prepare-kit.sh (here) and carrying device-kit/:
#   selftest (every GPU op against the CPU backend, golden logits and greedy tokens, fusion exactness),
#   bench kernels (GEMMs vs cuBLAS peak in the same run, memory-bound kernels vs 4.3 TB/s),
#   bench engine and bench fusion on tiny-pydocs and on a llama-3.1-8b shape (8K-token fused prompt: 16 × 512).
# Every result goes to $OUT (the device tool's folder), or ./device-out.
set -uo pipefail
kit=${KIT:-device-kit}
out=${OUT:-device-out}
bin="$kit/kvfusion/kvfusion"
models="$kit/models"
big=${BIG_MODEL_DIR:-/tmp/kvfusion-llama-3.1-8b}
mkdir -p "$out"
export KVFUSION_CUBIN_CACHE=${KVFUSION_CUBIN_CACHE:-/tmp/kvfusion-cubin}
export DOTNET_BUNDLE_EXTRACT_BASE_DIR=${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-/tmp/kvfusion-bundle}
[ -d /usr/local/cuda/lib64 ] && export KVFUSION_CUDA_LIB_DIR=${KVFUSION_CUDA_LIB_DIR:-/usr/local/cuda/lib64}

step() {
  local name=$1
  shift
  echo "=== $name: $*"
  local start=$SECONDS
  "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - start)) s"
  tail -n "${TAIL_LINES:-45}" "$out/$name.txt"
  return 0
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv >"$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
step selftest "$bin" selftest --device cuda --models "$models" --json "$out/selftest.json"
step kernels "$bin" bench kernels --device cuda --shape llama-3.1-8b --rows 4096 --context 8192 --bandwidth-gbs 4300 --json "$out/kernels.json"
step engine-tiny "$bin" bench engine --device cuda --model "$models/tiny-pydocs" --prompt-tokens 128,512,2048 --gen-tokens 64 --runs 5 --json "$out/engine-tiny.json"
step fusion-tiny "$bin" bench fusion --device cuda --model "$models/tiny-pydocs" --chunks 2,4,7 --chunk-tokens 256 --runs 5 --json "$out/fusion-tiny.json" --png "$out/fusion-tiny.png"
[ -f "$big/model.safetensors" ] || step init-8b "$bin" model init --shape llama-3.1-8b --out "$big" --dtype bf16 --overwrite
step engine-8b "$bin" bench engine --device cuda --model "$big" --prompt-tokens 512,2048,8192 --gen-tokens 32 --runs 3 --json "$out/engine-8b.json"
step fusion-8b "$bin" bench fusion --device cuda --model "$big" --chunks 4,16 --chunk-tokens 512 --modes full,reuse,blend:0.15,blend:0.15:ref --runs 3 --json "$out/fusion-8b.json" --png "$out/fusion-8b.png"
echo "=== done"
