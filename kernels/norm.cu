// RMSNorm over whole rows (one block per row) and per head (one warp per head: Qwen3's q/k norm), computed as
// transformers does in float32: weight * (x * rsqrt(mean(x^2) + eps)).
#include "prelude.cuh"

// Values per thread a row may take and still be normalized from registers.
#define RMS_CACHED 8

template <typename T>
__device__ void rms_norm_impl(const float* x, long long ldx, int rows, int cols, const typename T::storage* weight,
                              float eps, float* out, long long ldo)
{
    __shared__ float scratch[KVF_WARP];
    for (int r = blockIdx.x; r < rows; r += gridDim.x)
    {
        const float* xr = x + (long long)r * ldx;
        float* o = out + (long long)r * ldo;
        if (cols <= RMS_CACHED * (int)blockDim.x)
        {
            // The row fits in registers (hidden sizes up to 8 x blockDim): one read of x instead of two.
            float v[RMS_CACHED];
            float ss = 0.0f;
#pragma unroll
            for (int k = 0; k < RMS_CACHED; k++)
            {
                const int c = threadIdx.x + k * blockDim.x;
                v[k] = c < cols ? xr[c] : 0.0f;
                ss += v[k] * v[k];
            }

            ss = kvf_block_sum(ss, scratch);
            const float scale = 1.0f / sqrtf(ss / (float)cols + eps);
#pragma unroll
            for (int k = 0; k < RMS_CACHED; k++)
            {
                const int c = threadIdx.x + k * blockDim.x;
                if (c < cols)
                {
                    o[c] = T::load(weight, c) * (v[k] * scale);
                }
            }

            continue;
        }

        float ss = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x)
        {
            const float v = xr[c];
            ss += v * v;
        }

        ss = kvf_block_sum(ss, scratch);
        const float scale = 1.0f / sqrtf(ss / (float)cols + eps);
        for (int c = threadIdx.x; c < cols; c += blockDim.x)
        {
            o[c] = T::load(weight, c) * (xr[c] * scale);
        }
    }
}

extern "C" __global__ void rms_norm_f32(const float* x, long long ldx, int rows, int cols, const float* w, float eps, float* out, long long ldo) { rms_norm_impl<KvfF32>(x, ldx, rows, cols, w, eps, out, ldo); }
extern "C" __global__ void rms_norm_f16(const float* x, long long ldx, int rows, int cols, const kvf_half_bits* w, float eps, float* out, long long ldo) { rms_norm_impl<KvfF16>(x, ldx, rows, cols, w, eps, out, ldo); }
extern "C" __global__ void rms_norm_bf16(const float* x, long long ldx, int rows, int cols, const kvf_half_bits* w, float eps, float* out, long long ldo) { rms_norm_impl<KvfBF16>(x, ldx, rows, cols, w, eps, out, ldo); }

// In place, each run of head_dim columns of the first `cols` columns is normalized on its own.
template <typename T>
__device__ void rms_norm_heads_impl(float* x, long long ldx, int rows, int cols, int head_dim,
                                    const typename T::storage* weight, float eps)
{
    const int lane = threadIdx.x & (KVF_WARP - 1);
    const int warps_per_block = blockDim.x / KVF_WARP;
    const int heads = cols / head_dim;
    const long long total = (long long)rows * heads;
    for (long long item = (long long)blockIdx.x * warps_per_block + threadIdx.x / KVF_WARP; item < total;
         item += (long long)gridDim.x * warps_per_block)
    {
        const long long r = item / heads;
        const int h = (int)(item - r * heads);
        float* v = x + r * ldx + (long long)h * head_dim;
        float ss = 0.0f;
        for (int d = lane; d < head_dim; d += KVF_WARP)
        {
            ss += v[d] * v[d];
        }

        ss = kvf_warp_sum(ss);
        const float scale = 1.0f / sqrtf(ss / (float)head_dim + eps);
        for (int d = lane; d < head_dim; d += KVF_WARP)
        {
            v[d] = T::load(weight, d) * (v[d] * scale);
        }
    }
}

extern "C" __global__ void rms_norm_heads_f32(float* x, long long ldx, int rows, int cols, int head_dim, const float* w, float eps) { rms_norm_heads_impl<KvfF32>(x, ldx, rows, cols, head_dim, w, eps); }
extern "C" __global__ void rms_norm_heads_f16(float* x, long long ldx, int rows, int cols, int head_dim, const kvf_half_bits* w, float eps) { rms_norm_heads_impl<KvfF16>(x, ldx, rows, cols, head_dim, w, eps); }
extern "C" __global__ void rms_norm_heads_bf16(float* x, long long ldx, int rows, int cols, int head_dim, const kvf_half_bits* w, float eps) { rms_norm_heads_impl<KvfBF16>(x, ldx, rows, cols, head_dim, w, eps); }
