#!/bin/sh
# Copies the kernels into the build folder with the only two emulation patches:
#  - the PTX fp16 conversions (cvt.f32.f16, cvt.rn.f16.f32) become _Float16 casts (round to nearest even);
#  - `extern __shared__ float4 shared_raw[];` becomes the launch's dynamic shared buffer.
# Fails if any inline PTX is left, so a new asm() in the kernels is noticed here.
set -e
SRC=${1:-../../kernels}
D=${2:-build/kernels}
mkdir -p "$D"
rm -f "$D"/*
cp "$SRC"/*.cu "$SRC"/*.cuh "$D"/
sed -i 's|asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));|{ _Float16 t_; __builtin_memcpy(\&t_, \&h, 2); f = (float)t_; }|' "$D/prelude.cuh"
sed -i 's|asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));|{ _Float16 t_ = (_Float16)f; __builtin_memcpy(\&h, \&t_, 2); }|' "$D/prelude.cuh"
sed -i 's|extern __shared__ float4 shared_raw\[\];|float4* shared_raw = emu_dyn_shared();|' "$D/attention.cu"
if grep -n 'asm(' "$D"/*; then
  echo "prepare.sh: inline PTX the emulator cannot run (add a patch above)" >&2
  exit 1
fi
