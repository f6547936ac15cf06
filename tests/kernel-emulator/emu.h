// Minimal CUDA execution emulator: blocks run one after another; inside a block every CUDA thread is a fiber
// (cooperative, single OS thread). __syncthreads and warp intrinsics are barriers on which fibers yield.
// Scheduling order is round robin or random (EMU_RANDOM seed) to expose order dependence between barriers.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>
#include <sys/mman.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3
{
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

struct alignas(16) float4
{
    float x, y, z, w;
};

extern dim3 threadIdx, blockIdx, blockDim, gridDim;

inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }
inline int __popc(unsigned int v) { return __builtin_popcount(v); }
template <class T> inline T min(T a, T b) { return a < b ? a : b; }
template <class T> inline T max(T a, T b) { return a > b ? a : b; }

// Atomics: one OS thread and no preemption, so plain read-modify-write is atomic.
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { unsigned o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { int o = *p; *p = o + v; return o; }
inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }
inline int atomicCAS(int* p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }

float4* emu_dyn_shared();
void __syncthreads();
unsigned int emu_warp_exchange(unsigned int mine, int src_lane, bool ballot);

template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int o)
{
    if (mask != 0xffffffffu) { fprintf(stderr, "partial mask\n"); abort(); }
    unsigned u; static_assert(sizeof(T) == 4); memcpy(&u, &v, 4);
    u = emu_warp_exchange(u, (threadIdx.x & 31) ^ o, false);
    T r; memcpy(&r, &u, 4); return r;
}
template <class T> inline T __shfl_sync(unsigned mask, T v, int src)
{
    if (mask != 0xffffffffu) { fprintf(stderr, "partial mask\n"); abort(); }
    unsigned u; static_assert(sizeof(T) == 4); memcpy(&u, &v, 4);
    u = emu_warp_exchange(u, src & 31, false);
    T r; memcpy(&r, &u, 4); return r;
}
inline unsigned __ballot_sync(unsigned mask, bool p)
{
    if (mask != 0xffffffffu) { fprintf(stderr, "partial mask\n"); abort(); }
    return emu_warp_exchange(p ? 1u : 0u, 0, true);
}

// Launch: `body` is called by every CUDA thread of every block.
void emu_launch(dim3 grid, dim3 block, size_t dyn_shared_bytes, const std::function<void()>& body);
extern unsigned long long emu_seed; // 0: round robin; otherwise random scheduling
