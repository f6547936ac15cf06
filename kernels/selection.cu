// Blend selection on the device: the per-token deviation of fresh K (or V) from the stored cache at the check
// layer, and the top-k of a score vector returned as ascending indices (ties go to the lower index, as on the CPU).
#include "prelude.cuh"

// output[r] = sum over kv heads and dims of (fresh[r, h*hd + d] - cache[(h*capacity + slots[r])*hd + d])^2.
extern "C" __global__ void cache_deviation(const float* fresh, long long ldf, int rows, const int* slots, const float* cache,
                                           int kv_heads, int capacity, int head_dim, float* output, int* error)
{
    __shared__ float scratch[KVF_WARP];
    const int width = kv_heads * head_dim;
    for (int r = blockIdx.x; r < rows; r += gridDim.x)
    {
        const int slot = slots[r];
        const bool valid = slot >= 0 && slot < capacity;
        float sum = 0.0f;
        if (valid)
        {
            const float* f = fresh + (long long)r * ldf;
            for (int c = threadIdx.x; c < width; c += blockDim.x)
            {
                const int h = c / head_dim;
                const int d = c - h * head_dim;
                const float diff = f[c] - cache[((long long)h * capacity + slot) * head_dim + d];
                sum += diff * diff;
            }
        }

        sum = kvf_block_sum(sum, scratch);
        if (threadIdx.x == 0)
        {
            if (!valid)
            {
                kvf_report(error, KVF_ERROR_SLOT);
            }

            output[r] = valid ? sum : 0.0f;
        }
    }
}

// Maps a float to an unsigned key whose order is the float order; NaN sorts below every number.
__device__ __forceinline__ unsigned int kvf_order_key(float f)
{
    if (f != f)
    {
        return 0u;
    }

    const unsigned int u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// One block (1024 threads) selects the k largest of n scores by radix select on the order keys (4 passes of 8
// bits), then writes their indices in ascending order: every index with a key above the threshold, and the
// lowest-index ties of the threshold key to make exactly k.
extern "C" __global__ void topk_select(const float* scores, int n, int k, int* indices)
{
    __shared__ unsigned int histogram[256];
    __shared__ unsigned int prefix;
    __shared__ unsigned int prefix_mask;
    __shared__ int remaining;
    __shared__ int warp_counts[32];
    __shared__ int base;
    __shared__ int ties_base;

    if (k <= 0)
    {
        return;
    }

    if (threadIdx.x == 0)
    {
        prefix = 0u;
        prefix_mask = 0u;
        remaining = k;
    }

    __syncthreads();
    for (int shift = 24; shift >= 0; shift -= 8)
    {
        for (int b = threadIdx.x; b < 256; b += blockDim.x)
        {
            histogram[b] = 0u;
        }

        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x)
        {
            const unsigned int key = kvf_order_key(scores[i]);
            if ((key & prefix_mask) == prefix)
            {
                atomicAdd(&histogram[(key >> shift) & 255u], 1u);
            }
        }

        __syncthreads();
        if (threadIdx.x == 0)
        {
            // Walk digits from the top until the bucket that holds the remaining-th largest.
            int need = remaining;
            int digit = 255;
            for (; digit > 0; digit--)
            {
                const int count = (int)histogram[digit];
                if (count >= need)
                {
                    break;
                }

                need -= count;
            }

            remaining = need;
            prefix |= ((unsigned int)digit) << shift;
            prefix_mask |= 255u << shift;
        }

        __syncthreads();
    }

    // prefix is now the exact key of the k-th largest score; `remaining` ties of it are taken, lowest index first.
    const unsigned int threshold = prefix;
    const int ties_wanted = remaining;
    const int lane = threadIdx.x & (KVF_WARP - 1);
    const int warp = threadIdx.x / KVF_WARP;
    const int warps = blockDim.x / KVF_WARP;
    if (threadIdx.x == 0)
    {
        base = 0;
        ties_base = 0;
    }

    __syncthreads();
    for (int start = 0; start < n; start += blockDim.x)
    {
        const int i = start + threadIdx.x;
        unsigned int key = 0u;
        if (i < n)
        {
            key = kvf_order_key(scores[i]);
        }

        const bool above = i < n && key > threshold;
        const bool tie = i < n && key == threshold;

        // Ties first: how many ties precede this element in index order decides whether it is taken.
        const unsigned int tie_ballot = __ballot_sync(KVF_FULL_MASK, tie);
        if (lane == 0)
        {
            warp_counts[warp] = __popc(tie_ballot);
        }

        __syncthreads();
        int tie_rank = ties_base;
        for (int w = 0; w < warp; w++)
        {
            tie_rank += warp_counts[w];
        }

        tie_rank += __popc(tie_ballot & ((1u << lane) - 1u));
        const bool take = above || (tie && tie_rank < ties_wanted);
        __syncthreads();
        if (threadIdx.x == 0)
        {
            int total = 0;
            for (int w = 0; w < warps; w++)
            {
                total += warp_counts[w];
            }

            ties_base += total;
        }

        const unsigned int take_ballot = __ballot_sync(KVF_FULL_MASK, take);
        __syncthreads();
        if (lane == 0)
        {
            warp_counts[warp] = __popc(take_ballot);
        }

        __syncthreads();
        int slot = base;
        for (int w = 0; w < warp; w++)
        {
            slot += warp_counts[w];
        }

        slot += __popc(take_ballot & ((1u << lane) - 1u));
        if (take)
        {
            indices[slot] = i;
        }

        __syncthreads();
        if (threadIdx.x == 0)
        {
            int total = 0;
            for (int w = 0; w < warps; w++)
            {
                total += warp_counts[w];
            }

            base += total;
        }

        __syncthreads();
    }
}
