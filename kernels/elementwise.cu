// Memory-bound kernels: embedding lookup, dtype conversion for GEMM inputs, SiLU gate, residual add, bias, row
// gathers, KV cache scatter/gather and rotary embedding. Grid-stride loops, so any grid size is correct.
#include "prelude.cuh"

template <typename T>
__device__ void embed_impl(const typename T::storage* table, int vocab, int cols, const int* ids, int count,
                           float* out, long long ldo, int* error)
{
    for (int row = blockIdx.x; row < count; row += gridDim.x)
    {
        const int id = ids[row];
        float* o = out + (long long)row * ldo;
        if (id < 0 || id >= vocab)
        {
            if (threadIdx.x == 0)
            {
                kvf_report(error, KVF_ERROR_TOKEN_ID);
            }

            for (int c = threadIdx.x; c < cols; c += blockDim.x)
            {
                o[c] = 0.0f;
            }

            continue;
        }

        const long long base = (long long)id * cols;
        for (int c = threadIdx.x; c < cols; c += blockDim.x)
        {
            o[c] = T::load(table, base + c);
        }
    }
}

extern "C" __global__ void embed_f32(const float* t, int vocab, int cols, const int* ids, int count, float* out, long long ldo, int* error) { embed_impl<KvfF32>(t, vocab, cols, ids, count, out, ldo, error); }
extern "C" __global__ void embed_f16(const kvf_half_bits* t, int vocab, int cols, const int* ids, int count, float* out, long long ldo, int* error) { embed_impl<KvfF16>(t, vocab, cols, ids, count, out, ldo, error); }
extern "C" __global__ void embed_bf16(const kvf_half_bits* t, int vocab, int cols, const int* ids, int count, float* out, long long ldo, int* error) { embed_impl<KvfBF16>(t, vocab, cols, ids, count, out, ldo, error); }

// GEMM inputs: the first `cols` columns of `rows` rows of x (row stride ldx) into a packed [rows, cols] half matrix.
template <typename T>
__device__ void convert_impl(const float* x, long long ldx, int rows, int cols, typename T::storage* out)
{
    const long long total = (long long)rows * cols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x)
    {
        const long long r = i / cols;
        const long long c = i - r * cols;
        out[i] = T::store_value(x[r * ldx + c]);
    }
}

extern "C" __global__ void convert_f32_to_f16(const float* x, long long ldx, int rows, int cols, kvf_half_bits* out) { convert_impl<KvfF16>(x, ldx, rows, cols, out); }
extern "C" __global__ void convert_f32_to_bf16(const float* x, long long ldx, int rows, int cols, kvf_half_bits* out) { convert_impl<KvfBF16>(x, ldx, rows, cols, out); }

// Weights stored in one half format converted to float32 (used for F32 GEMM fallbacks and host-free checks).
extern "C" __global__ void convert_f16_to_f32(const kvf_half_bits* x, long long n, float* out)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        out[i] = kvf_f16_to_f32(x[i]);
    }
}

extern "C" __global__ void convert_bf16_to_f32(const kvf_half_bits* x, long long n, float* out)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        out[i] = kvf_bf16_to_f32(x[i]);
    }
}

// out = silu(gate) * up, in float32 as transformers computes it: gate / (1 + exp(-gate)) * up.
extern "C" __global__ void silu_multiply(const float* gate, const float* up, long long n, float* out)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long n4 = n / 4;
    const float4* g4 = reinterpret_cast<const float4*>(gate);
    const float4* u4 = reinterpret_cast<const float4*>(up);
    float4* o4 = reinterpret_cast<float4*>(out);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride)
    {
        const float4 g = g4[i];
        const float4 u = u4[i];
        float4 r;
        r.x = g.x / (1.0f + expf(-g.x)) * u.x;
        r.y = g.y / (1.0f + expf(-g.y)) * u.y;
        r.z = g.z / (1.0f + expf(-g.z)) * u.z;
        r.w = g.w / (1.0f + expf(-g.w)) * u.w;
        o4[i] = r;
    }

    for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// target += source.
extern "C" __global__ void add_inplace(float* target, const float* source, long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long n4 = n / 4;
    float4* t4 = reinterpret_cast<float4*>(target);
    const float4* s4 = reinterpret_cast<const float4*>(source);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride)
    {
        float4 t = t4[i];
        const float4 s = s4[i];
        t.x += s.x;
        t.y += s.y;
        t.z += s.z;
        t.w += s.w;
        t4[i] = t;
    }

    for (long long i = n4 * 4 + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    {
        target[i] += source[i];
    }
}

// out[r, c] += bias[c] for c < cols (row stride ldo).
template <typename T>
__device__ void add_bias_impl(float* out, long long ldo, int rows, int cols, const typename T::storage* bias)
{
    const long long total = (long long)rows * cols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x)
    {
        const long long r = i / cols;
        const int c = (int)(i - r * cols);
        out[r * ldo + c] += T::load(bias, c);
    }
}

extern "C" __global__ void add_bias_f32(float* out, long long ldo, int rows, int cols, const float* bias) { add_bias_impl<KvfF32>(out, ldo, rows, cols, bias); }
extern "C" __global__ void add_bias_f16(float* out, long long ldo, int rows, int cols, const kvf_half_bits* bias) { add_bias_impl<KvfF16>(out, ldo, rows, cols, bias); }
extern "C" __global__ void add_bias_bf16(float* out, long long ldo, int rows, int cols, const kvf_half_bits* bias) { add_bias_impl<KvfBF16>(out, ldo, rows, cols, bias); }

// destination[i] = source[indices[i]] (whole rows of `row_words` 32-bit words or 16-bit halves).
template <typename W>
__device__ void gather_rows_impl(const W* source, int source_rows, long long row_words, const int* indices, int count,
                                 W* destination, int* error)
{
    for (int i = blockIdx.x; i < count; i += gridDim.x)
    {
        const int r = indices[i];
        W* d = destination + (long long)i * row_words;
        if (r < 0 || r >= source_rows)
        {
            if (threadIdx.x == 0)
            {
                kvf_report(error, KVF_ERROR_ROW);
            }

            for (long long c = threadIdx.x; c < row_words; c += blockDim.x)
            {
                d[c] = 0;
            }

            continue;
        }

        const W* s = source + (long long)r * row_words;
        for (long long c = threadIdx.x; c < row_words; c += blockDim.x)
        {
            d[c] = s[c];
        }
    }
}

extern "C" __global__ void gather_rows_b32(const unsigned int* s, int source_rows, long long row_words, const int* idx, int count, unsigned int* d, int* error) { gather_rows_impl<unsigned int>(s, source_rows, row_words, idx, count, d, error); }
extern "C" __global__ void gather_rows_b16(const unsigned short* s, int source_rows, long long row_words, const int* idx, int count, unsigned short* d, int* error) { gather_rows_impl<unsigned short>(s, source_rows, row_words, idx, count, d, error); }

// Cache layout per layer: [kv_head][slot][head_dim]; rows of K or V are [kv_heads * head_dim] (row stride lds).
extern "C" __global__ void scatter_to_cache(const float* source, long long lds, int rows, const int* slots, float* cache,
                                            int kv_heads, int capacity, int head_dim, int* error)
{
    const int width = kv_heads * head_dim;
    for (int r = blockIdx.x; r < rows; r += gridDim.x)
    {
        const int slot = slots[r];
        if (slot < 0 || slot >= capacity)
        {
            if (threadIdx.x == 0)
            {
                kvf_report(error, KVF_ERROR_SLOT);
            }

            continue;
        }

        const float* s = source + (long long)r * lds;
        for (int c = threadIdx.x; c < width; c += blockDim.x)
        {
            const int h = c / head_dim;
            const int d = c - h * head_dim;
            cache[((long long)h * capacity + slot) * head_dim + d] = s[c];
        }
    }
}

extern "C" __global__ void gather_from_cache(const float* cache, int kv_heads, int capacity, int head_dim, const int* slots,
                                             int rows, float* destination, long long ldd, int* error)
{
    const int width = kv_heads * head_dim;
    for (int r = blockIdx.x; r < rows; r += gridDim.x)
    {
        const int slot = slots[r];
        float* o = destination + (long long)r * ldd;
        if (slot < 0 || slot >= capacity)
        {
            if (threadIdx.x == 0)
            {
                kvf_report(error, KVF_ERROR_SLOT);
            }

            for (int c = threadIdx.x; c < width; c += blockDim.x)
            {
                o[c] = 0.0f;
            }

            continue;
        }

        for (int c = threadIdx.x; c < width; c += blockDim.x)
        {
            const int h = c / head_dim;
            const int d = c - h * head_dim;
            o[c] = cache[((long long)h * capacity + slot) * head_dim + d];
        }
    }
}

// Rotate-half RoPE: for every head of the first `cols` columns of each row, pairs (i, i + half) rotate by
// position * inv_freq[i]. The angle is formed in float32 exactly as transformers does; sincosf is the accurate one.
// In place is allowed (x == out): each pair is read before it is written by the same thread.
extern "C" __global__ void rope_apply(const float* x, long long ldx, int rows, int cols, int head_dim, const int* positions,
                                      const float* inv_freq, float* out, long long ldo)
{
    const int half = head_dim / 2;
    const int pairs_per_row = cols / 2;
    const long long total = (long long)rows * pairs_per_row;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x)
    {
        const long long r = i / pairs_per_row;
        const int p = (int)(i - r * pairs_per_row);
        const int head = p / half;
        const int j = p - head * half;
        const float angle = (float)positions[r] * inv_freq[j];
        float s;
        float c;
        sincosf(angle, &s, &c);
        const long long xi = r * ldx + (long long)head * head_dim + j;
        const long long oi = r * ldo + (long long)head * head_dim + j;
        const float a = x[xi];
        const float b = x[xi + half];
        out[oi] = a * c - b * s;
        out[oi + half] = b * c + a * s;
    }
}

// Stored half-precision K or V of `count` consecutive tokens, laid out [kv_head][token][head_dim] like the cache,
// widened into slots first_slot.. of a layer's cache; with positions, each head is rotated by RoPE on the way in
// (the same rotate-half arithmetic as rope_apply).
extern "C" __global__ void import_half_to_cache(const kvf_half_bits* source, int count, int kv_heads, int head_dim,
                                                float* cache, int capacity, int first_slot, const int* positions,
                                                const float* inv_freq)
{
    const int half = head_dim / 2;
    const long long total = (long long)kv_heads * count * half;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x)
    {
        const long long row = i / half; // kv_head * count + token
        const int j = (int)(i - row * half);
        const int h = (int)(row / count);
        const int t = (int)(row - (long long)h * count);
        const kvf_half_bits* s = source + row * head_dim;
        float* o = cache + ((long long)h * capacity + first_slot + t) * head_dim;
        const float a = kvf_f16_to_f32(s[j]);
        const float b = kvf_f16_to_f32(s[j + half]);
        if (positions == nullptr)
        {
            o[j] = a;
            o[j + half] = b;
        }
        else
        {
            const float angle = (float)positions[t] * inv_freq[j];
            float sn;
            float cs;
            sincosf(angle, &sn, &cs);
            o[j] = a * cs - b * sn;
            o[j + half] = b * cs + a * sn;
        }
    }
}
