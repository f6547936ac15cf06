// Attention over the float32 KV cache ([kv_head][slot][head_dim] per layer) with a causal mask by original
// positions: a query at position p sees the slots whose key position is <= p (key positions are non-decreasing by
// slot). Queries may be any subset of rows (the blend case). Softmax runs online in base 2 (scale_log2 is the
// attention scale times log2(e)); rows that see no key produce zeros, as on the CPU.
//
// attention_prefill_hdN: one block per (32 query rows, head); 4 warps of 8 rows; K/V tiles of 32 slots in shared
//   memory; the block stops at the last slot its latest query can see.
// attention_decode_hdN + attention_combine_hdN: split-K for a few rows (decode): one block per (kv head, key split,
//   row) serves every query head of the group, so each K/V row is read from memory once; the combine kernel merges
//   the splits.
// attention_key_weights_hdN: the attention each key receives, summed over heads and query rows, from the
//   log-sum-exp the attention kernels leave behind (query-aware blend selection).
#include "prelude.cuh"

#define ATT_BQ 32
#define ATT_QPW 8
#define ATT_BK 32
#define ATT_THREADS 128
#define DEC_WARPS 8
#define DEC_MAX_GROUP 8

template <int HD>
__device__ void attention_prefill_impl(const float* q, long long ldq, const int* qpos, int rows, const float* kc,
                                       const float* vc, const int* kpos, int key_count, int capacity, int heads,
                                       int group, float scale_log2, float* out, long long ldo, float* lse)
{
    constexpr int DPL = (HD + KVF_WARP - 1) / KVF_WARP;
    constexpr int KS = HD + 1;
    extern __shared__ float4 shared_raw[];
    float* qs = reinterpret_cast<float*>(shared_raw);
    float* ks = qs + ATT_BQ * HD;
    float* vs = ks + ATT_BK * KS;
    __shared__ int block_keys;

    const int head = blockIdx.y;
    const int kv_head = head / group;
    const int row0 = blockIdx.x * ATT_BQ;
    const int lane = threadIdx.x & (KVF_WARP - 1);
    const int warp = threadIdx.x / KVF_WARP;
    const float* kbase = kc + (long long)kv_head * capacity * HD;
    const float* vbase = vc + (long long)kv_head * capacity * HD;

    for (int i = threadIdx.x; i < ATT_BQ * HD; i += ATT_THREADS)
    {
        const int r = i / HD;
        const int d = i - r * HD;
        const int row = row0 + r;
        qs[i] = row < rows ? q[(long long)row * ldq + (long long)head * HD + d] : 0.0f;
    }

    if (warp == 0)
    {
        int p = -2147483647 - 1;
        for (int r = lane; r < ATT_BQ; r += KVF_WARP)
        {
            if (row0 + r < rows)
            {
                p = max(p, qpos[row0 + r]);
            }
        }

#pragma unroll
        for (int o = KVF_WARP / 2; o > 0; o >>= 1)
        {
            p = max(p, __shfl_xor_sync(KVF_FULL_MASK, p, o));
        }

        if (lane == 0)
        {
            block_keys = kvf_visible_keys(kpos, key_count, p);
        }
    }

    __syncthreads();
    const int n = block_keys;

    int my_pos[ATT_QPW];
    float m[ATT_QPW];
    float l[ATT_QPW];
    float acc[ATT_QPW][DPL];
#pragma unroll
    for (int i = 0; i < ATT_QPW; i++)
    {
        const int row = row0 + warp * ATT_QPW + i;
        my_pos[i] = row < rows ? qpos[row] : (-2147483647 - 1);
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int c = 0; c < DPL; c++)
        {
            acc[i][c] = 0.0f;
        }
    }

    for (int t0 = 0; t0 < n; t0 += ATT_BK)
    {
        __syncthreads();
        for (int i = threadIdx.x; i < ATT_BK * HD; i += ATT_THREADS)
        {
            const int j = i / HD;
            const int d = i - j * HD;
            const int slot = t0 + j;
            float kv = 0.0f;
            float vv = 0.0f;
            if (slot < n)
            {
                kv = kbase[(long long)slot * HD + d];
                vv = vbase[(long long)slot * HD + d];
            }

            ks[j * KS + d] = kv;
            vs[j * HD + d] = vv;
        }

        __syncthreads();

        float s[ATT_QPW];
#pragma unroll
        for (int i = 0; i < ATT_QPW; i++)
        {
            s[i] = 0.0f;
        }

        const float* krow = ks + lane * KS;
#pragma unroll 4
        for (int d = 0; d < HD; d += 4)
        {
            const float k0 = krow[d];
            const float k1 = krow[d + 1];
            const float k2 = krow[d + 2];
            const float k3 = krow[d + 3];
#pragma unroll
            for (int i = 0; i < ATT_QPW; i++)
            {
                const float4 qv = *reinterpret_cast<const float4*>(qs + (warp * ATT_QPW + i) * HD + d);
                s[i] += qv.x * k0 + qv.y * k1 + qv.z * k2 + qv.w * k3;
            }
        }

        const int slot = t0 + lane;
        const int kp = slot < n ? kpos[slot] : 2147483647;
#pragma unroll
        for (int i = 0; i < ATT_QPW; i++)
        {
            const float si = (slot < n && kp <= my_pos[i]) ? s[i] * scale_log2 : -INFINITY;
            const float m_new = fmaxf(m[i], kvf_warp_max(si));
            const float p = m_new == -INFINITY ? 0.0f : exp2f(si - m_new);
            const float corr = m[i] == -INFINITY ? 0.0f : exp2f(m[i] - m_new);
            l[i] = l[i] * corr + kvf_warp_sum(p);
            m[i] = m_new;
#pragma unroll
            for (int c = 0; c < DPL; c++)
            {
                acc[i][c] *= corr;
            }

            s[i] = p;
        }

        for (int j = 0; j < ATT_BK; j++)
        {
            float v[DPL];
#pragma unroll
            for (int c = 0; c < DPL; c++)
            {
                const int d = lane + c * KVF_WARP;
                v[c] = d < HD ? vs[j * HD + d] : 0.0f;
            }

#pragma unroll
            for (int i = 0; i < ATT_QPW; i++)
            {
                const float pj = __shfl_sync(KVF_FULL_MASK, s[i], j);
#pragma unroll
                for (int c = 0; c < DPL; c++)
                {
                    acc[i][c] += pj * v[c];
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < ATT_QPW; i++)
    {
        const int row = row0 + warp * ATT_QPW + i;
        if (row >= rows)
        {
            continue;
        }

        const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        float* o = out + (long long)row * ldo + (long long)head * HD;
#pragma unroll
        for (int c = 0; c < DPL; c++)
        {
            const int d = lane + c * KVF_WARP;
            if (d < HD)
            {
                o[d] = acc[i][c] * inv;
            }
        }

        if (lse != nullptr && lane == 0)
        {
            lse[(long long)row * heads + head] = l[i] > 0.0f ? m[i] + log2f(l[i]) : -INFINITY;
        }
    }
}

// One key of the decode kernel: its score against every query head of the group, folded into the running softmax.
template <int HD, int DPL>
__device__ __forceinline__ void decode_accumulate(const float* qs, const float (&kr)[DPL], const float (&vr)[DPL], int group,
                                                  int lane, float scale_log2, float (&m)[DEC_MAX_GROUP],
                                                  float (&l)[DEC_MAX_GROUP], float (&acc)[DEC_MAX_GROUP][DPL])
{
#pragma unroll
    for (int h = 0; h < DEC_MAX_GROUP; h++)
    {
        if (h < group)
        {
            float dot = 0.0f;
#pragma unroll
            for (int c = 0; c < DPL; c++)
            {
                const int d = lane + c * KVF_WARP;
                dot += d < HD ? qs[h * HD + d] * kr[c] : 0.0f;
            }

            const float s = kvf_warp_sum(dot) * scale_log2;
            const float m_new = fmaxf(m[h], s);
            const float corr = m[h] == -INFINITY ? 0.0f : exp2f(m[h] - m_new);
            const float p = exp2f(s - m_new);
            l[h] = l[h] * corr + p;
            m[h] = m_new;
#pragma unroll
            for (int c = 0; c < DPL; c++)
            {
                acc[h][c] = acc[h][c] * corr + p * vr[c];
            }
        }
    }
}

template <int HD>
__device__ void attention_decode_impl(const float* q, long long ldq, const int* qpos, const float* kc, const float* vc,
                                      const int* kpos, int key_count, int capacity, int heads, int group,
                                      float scale_log2, int split_size, float* part_o, float* part_ml)
{
    constexpr int DPL = (HD + KVF_WARP - 1) / KVF_WARP;
    extern __shared__ float4 shared_raw[];
    float* qs = reinterpret_cast<float*>(shared_raw);           // [group][HD]
    float* wacc = qs + group * HD;                              // [DEC_WARPS][group][HD]
    float* wm = wacc + DEC_WARPS * group * HD;                  // [DEC_WARPS][group]
    float* wl = wm + DEC_WARPS * group;                         // [DEC_WARPS][group]

    const int kv_head = blockIdx.x;
    const int split = blockIdx.y;
    const int splits = gridDim.y;
    const int row = blockIdx.z;
    const int lane = threadIdx.x & (KVF_WARP - 1);
    const int warp = threadIdx.x / KVF_WARP;
    const int head0 = kv_head * group;

    for (int i = threadIdx.x; i < group * HD; i += blockDim.x)
    {
        const int h = i / HD;
        const int d = i - h * HD;
        qs[i] = q[(long long)row * ldq + (long long)(head0 + h) * HD + d];
    }

    __syncthreads();
    const int n = kvf_visible_keys(kpos, key_count, qpos[row]);
    const int start = split * split_size;
    const int end = min(n, start + split_size);
    const float* kbase = kc + (long long)kv_head * capacity * HD;
    const float* vbase = vc + (long long)kv_head * capacity * HD;

    float m[DEC_MAX_GROUP];
    float l[DEC_MAX_GROUP];
    float acc[DEC_MAX_GROUP][DPL];
#pragma unroll
    for (int h = 0; h < DEC_MAX_GROUP; h++)
    {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int c = 0; c < DPL; c++)
        {
            acc[h][c] = 0.0f;
        }
    }

    // Two keys per iteration (this warp's next two), their K and V loads issued together: twice the bytes in flight.
    for (int key = start + warp; key < end; key += 2 * DEC_WARPS)
    {
        const int key2 = key + DEC_WARPS;
        const bool second = key2 < end;
        float kr[DPL];
        float vr[DPL];
        float kr2[DPL];
        float vr2[DPL];
#pragma unroll
        for (int c = 0; c < DPL; c++)
        {
            const int d = lane + c * KVF_WARP;
            kr[c] = d < HD ? kbase[(long long)key * HD + d] : 0.0f;
            vr[c] = d < HD ? vbase[(long long)key * HD + d] : 0.0f;
            kr2[c] = d < HD && second ? kbase[(long long)key2 * HD + d] : 0.0f;
            vr2[c] = d < HD && second ? vbase[(long long)key2 * HD + d] : 0.0f;
        }

        decode_accumulate<HD, DPL>(qs, kr, vr, group, lane, scale_log2, m, l, acc);
        if (second)
        {
            decode_accumulate<HD, DPL>(qs, kr2, vr2, group, lane, scale_log2, m, l, acc);
        }
    }

#pragma unroll
    for (int h = 0; h < DEC_MAX_GROUP; h++)
    {
        if (h < group)
        {
#pragma unroll
            for (int c = 0; c < DPL; c++)
            {
                const int d = lane + c * KVF_WARP;
                if (d < HD)
                {
                    wacc[(warp * group + h) * HD + d] = acc[h][c];
                }
            }

            if (lane == 0)
            {
                wm[warp * group + h] = m[h];
                wl[warp * group + h] = l[h];
            }
        }
    }

    __syncthreads();
    for (int i = threadIdx.x; i < group * HD; i += blockDim.x)
    {
        const int h = i / HD;
        const int d = i - h * HD;
        float mx = -INFINITY;
        for (int w = 0; w < DEC_WARPS; w++)
        {
            mx = fmaxf(mx, wm[w * group + h]);
        }

        float sum_l = 0.0f;
        float sum_o = 0.0f;
        if (mx != -INFINITY)
        {
            for (int w = 0; w < DEC_WARPS; w++)
            {
                const float mw = wm[w * group + h];
                if (mw != -INFINITY)
                {
                    const float f = exp2f(mw - mx);
                    sum_l += wl[w * group + h] * f;
                    sum_o += wacc[(w * group + h) * HD + d] * f;
                }
            }
        }

        const long long part = ((long long)row * heads + head0 + h) * splits + split;
        part_o[part * HD + d] = sum_o;
        if (d == 0)
        {
            part_ml[part * 2] = mx;
            part_ml[part * 2 + 1] = sum_l;
        }
    }
}

template <int HD>
__device__ void attention_combine_impl(const float* part_o, const float* part_ml, int heads, int splits, float* out,
                                       long long ldo, float* lse)
{
    const int item = blockIdx.x; // row * heads + head
    const int row = item / heads;
    const int head = item - row * heads;
    const long long first = (long long)item * splits;
    float mx = -INFINITY;
    for (int s = 0; s < splits; s++)
    {
        mx = fmaxf(mx, part_ml[(first + s) * 2]);
    }

    float total = 0.0f;
    if (mx != -INFINITY)
    {
        for (int s = 0; s < splits; s++)
        {
            const float ms = part_ml[(first + s) * 2];
            if (ms != -INFINITY)
            {
                total += part_ml[(first + s) * 2 + 1] * exp2f(ms - mx);
            }
        }
    }

    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (int d = threadIdx.x; d < HD; d += blockDim.x)
    {
        float o = 0.0f;
        if (mx != -INFINITY)
        {
            for (int s = 0; s < splits; s++)
            {
                const float ms = part_ml[(first + s) * 2];
                if (ms != -INFINITY)
                {
                    o += part_o[(first + s) * HD + d] * exp2f(ms - mx);
                }
            }
        }

        out[(long long)row * ldo + (long long)head * HD + d] = o * inv;
    }

    if (lse != nullptr && threadIdx.x == 0)
    {
        lse[item] = total > 0.0f ? mx + log2f(total) : -INFINITY;
    }
}

// weights[slot] += sum over heads and rows of softmax probability of slot, from the rows' log-sum-exp (base 2).
template <int HD>
__device__ void attention_key_weights_impl(const float* q, long long ldq, const int* qpos, int rows, const float* kc,
                                           const int* kpos, int key_count, int capacity, int heads, int group,
                                           float scale_log2, const float* lse, float* weights)
{
    __shared__ float qs[16 * HD];
    __shared__ int ps[16];
    __shared__ float ls[16];
    const int head = blockIdx.y;
    const int kv_head = head / group;
    const int slot = blockIdx.x * blockDim.x + threadIdx.x;
    const bool active = slot < key_count;
    const float* krow = kc + ((long long)kv_head * capacity + (active ? slot : 0)) * HD;
    const int key_position = active ? kpos[slot] : 2147483647;
    float total = 0.0f;
    for (int r0 = 0; r0 < rows; r0 += 16)
    {
        const int count = min(16, rows - r0);
        __syncthreads();
        for (int i = threadIdx.x; i < count * HD; i += blockDim.x)
        {
            const int r = i / HD;
            const int d = i - r * HD;
            qs[i] = q[(long long)(r0 + r) * ldq + (long long)head * HD + d];
        }

        if (threadIdx.x < count)
        {
            ps[threadIdx.x] = qpos[r0 + threadIdx.x];
            ls[threadIdx.x] = lse[(long long)(r0 + threadIdx.x) * heads + head];
        }

        __syncthreads();
        if (active)
        {
            for (int r = 0; r < count; r++)
            {
                if (key_position <= ps[r] && ls[r] != -INFINITY)
                {
                    float dot = 0.0f;
                    for (int d = 0; d < HD; d++)
                    {
                        dot += qs[r * HD + d] * krow[d];
                    }

                    total += exp2f(dot * scale_log2 - ls[r]);
                }
            }
        }
    }

    if (active && total != 0.0f)
    {
        atomicAdd(weights + slot, total);
    }
}

#define KVF_ATTENTION_KERNELS(HD)                                                                                       \
    extern "C" __global__ void __launch_bounds__(ATT_THREADS) attention_prefill_hd##HD(                                \
        const float* q, long long ldq, const int* qpos, int rows, const float* kc, const float* vc, const int* kpos,     \
        int key_count, int capacity, int heads, int group, float scale_log2, float* out, long long ldo, float* lse)     \
    {                                                                                                                   \
        attention_prefill_impl<HD>(q, ldq, qpos, rows, kc, vc, kpos, key_count, capacity, heads, group, scale_log2,    \
                                   out, ldo, lse);                                                                      \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(DEC_WARPS * KVF_WARP) attention_decode_hd##HD(                        \
        const float* q, long long ldq, const int* qpos, const float* kc, const float* vc, const int* kpos,               \
        int key_count, int capacity, int heads, int group, float scale_log2, int split_size, float* part_o,             \
        float* part_ml)                                                                                                 \
    {                                                                                                                   \
        attention_decode_impl<HD>(q, ldq, qpos, kc, vc, kpos, key_count, capacity, heads, group, scale_log2,           \
                                  split_size, part_o, part_ml);                                                         \
    }                                                                                                                   \
    extern "C" __global__ void attention_combine_hd##HD(const float* part_o, const float* part_ml, int heads,          \
                                                        int splits, float* out, long long ldo, float* lse)              \
    {                                                                                                                   \
        attention_combine_impl<HD>(part_o, part_ml, heads, splits, out, ldo, lse);                                     \
    }                                                                                                                   \
    extern "C" __global__ void attention_key_weights_hd##HD(                                                           \
        const float* q, long long ldq, const int* qpos, int rows, const float* kc, const int* kpos, int key_count,      \
        int capacity, int heads, int group, float scale_log2, const float* lse, float* weights)                         \
    {                                                                                                                   \
        attention_key_weights_impl<HD>(q, ldq, qpos, rows, kc, kpos, key_count, capacity, heads, group, scale_log2,    \
                                       lse, weights);                                                                   \
    }

KVF_ATTENTION_KERNELS(16)
KVF_ATTENTION_KERNELS(32)
KVF_ATTENTION_KERNELS(64)
KVF_ATTENTION_KERNELS(80)
KVF_ATTENTION_KERNELS(96)
KVF_ATTENTION_KERNELS(128)
KVF_ATTENTION_KERNELS(256)
