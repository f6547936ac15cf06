#!/usr/bin/env bash
# Builds what the GPU machine needs into device-kit/ (ignored by git, carried by the device tool): the self-contained
# kvfusion (no .NET there) and the model files the selftest and benchmarks read (../shared does not travel).
# Usage: scripts/device/prepare-kit.sh [path/to/shared/models]
set -euo pipefail
cd "$(dirname "$0")/../.."
models_src=${1:-../shared/models}
kit=device-kit
rm -rf "$kit"
mkdir -p "$kit/models/zoo"
dotnet publish src/KvFusion.Cli -c Release -p:PublishProfile=linux-x64 >/dev/null
cp -r artifacts/kvfusion-linux-x64 "$kit/kvfusion"
rm -f "$kit"/kvfusion/*.pdb
for m in tiny-pydocs tiny-pydocs-coder; do
  mkdir -p "$kit/models/$m"
  # Everything but the GGUF copy (llama.cpp only) and fingerprint caches.
  find "$models_src/$m" -maxdepth 1 -type f ! -name '*.gguf' ! -name '*.kvfusion-fingerprint.json' ! -name '*.py' \
    -exec cp {} "$kit/models/$m/" \;
done
for z in "$models_src"/zoo/*/; do
  cp -r "$z" "$kit/models/zoo/"
done
du -sh "$kit" "$kit"/*
total=$(du -sb "$kit" | cut -f1)
if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
  echo "device-kit is $total bytes: over the 64 MiB the device tool carries" >&2
  exit 1
fi
