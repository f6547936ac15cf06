// Shared definitions for the KvFusion kernels. Header-free on purpose: NVRTC compiles these sources without the
// CUDA toolkit's include directory, so fp16/bf16 conversions are written with PTX instructions and bit operations.
#pragma once

typedef unsigned short kvf_half_bits;

#define KVF_WARP 32
#define KVF_FULL_MASK 0xffffffffu

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// Error codes written to the backend's error word when a kernel meets an index it must not follow. The host reads
// the word at its next synchronization point and throws, naming the operation.
#define KVF_ERROR_TOKEN_ID 1
#define KVF_ERROR_SLOT 2
#define KVF_ERROR_ROW 3

__device__ __forceinline__ void kvf_report(int* error, int code)
{
    atomicCAS(error, 0, code);
}

__device__ __forceinline__ float kvf_f16_to_f32(kvf_half_bits h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ kvf_half_bits kvf_f32_to_f16(float f)
{
    kvf_half_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float kvf_bf16_to_f32(kvf_half_bits h)
{
    return __uint_as_float(((unsigned int)h) << 16);
}

__device__ __forceinline__ kvf_half_bits kvf_f32_to_bf16(float f)
{
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
    {
        return (kvf_half_bits)((u >> 16) | 0x40u); // quiet NaN
    }

    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even
    return (kvf_half_bits)(u >> 16);
}

// Element loaders by storage type: the kernels are templated on these so that one source serves F32, F16 and BF16.
struct KvfF32
{
    typedef float storage;
    __device__ __forceinline__ static float load(const float* p, long long i) { return p[i]; }
    __device__ __forceinline__ static float store_value(float f) { return f; }
};

struct KvfF16
{
    typedef kvf_half_bits storage;
    __device__ __forceinline__ static float load(const kvf_half_bits* p, long long i) { return kvf_f16_to_f32(p[i]); }
    __device__ __forceinline__ static kvf_half_bits store_value(float f) { return kvf_f32_to_f16(f); }
};

struct KvfBF16
{
    typedef kvf_half_bits storage;
    __device__ __forceinline__ static float load(const kvf_half_bits* p, long long i) { return kvf_bf16_to_f32(p[i]); }
    __device__ __forceinline__ static kvf_half_bits store_value(float f) { return kvf_f32_to_bf16(f); }
};

__device__ __forceinline__ float kvf_warp_sum(float v)
{
#pragma unroll
    for (int o = KVF_WARP / 2; o > 0; o >>= 1)
    {
        v += __shfl_xor_sync(KVF_FULL_MASK, v, o);
    }

    return v;
}

__device__ __forceinline__ float kvf_warp_max(float v)
{
#pragma unroll
    for (int o = KVF_WARP / 2; o > 0; o >>= 1)
    {
        v = fmaxf(v, __shfl_xor_sync(KVF_FULL_MASK, v, o));
    }

    return v;
}

// Sum over a block of up to 1024 threads; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float kvf_block_sum(float v, float* scratch)
{
    const int lane = threadIdx.x & (KVF_WARP - 1);
    const int warp = threadIdx.x / KVF_WARP;
    const int warps = (blockDim.x + KVF_WARP - 1) / KVF_WARP;
    v = kvf_warp_sum(v);
    __syncthreads();
    if (lane == 0)
    {
        scratch[warp] = v;
    }

    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return kvf_warp_sum(v);
}

// Number of slots whose key position is <= position; key positions are non-decreasing by slot.
__device__ __forceinline__ int kvf_visible_keys(const int* key_positions, int key_count, int position)
{
    int lo = 0;
    int hi = key_count;
    while (lo < hi)
    {
        const int mid = (lo + hi) >> 1;
        if (key_positions[mid] <= position)
        {
            lo = mid + 1;
        }
        else
        {
            hi = mid;
        }
    }

    return lo;
}
