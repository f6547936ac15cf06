#pragma once
#include "emu.h"
#include <algorithm>
#include <cinttypes>
#include <numeric>
#include <string>
#include <unistd.h>

typedef unsigned short hbits;
extern "C" {
void embed_f32(const float*, int, int, const int*, int, float*, long long, int*);
void embed_f16(const hbits*, int, int, const int*, int, float*, long long, int*);
void embed_bf16(const hbits*, int, int, const int*, int, float*, long long, int*);
void import_half_to_cache(const hbits*, int, int, int, float*, int, int, const int*, const float*);
void convert_f32_to_f16(const float*, long long, int, int, hbits*);
void convert_f32_to_bf16(const float*, long long, int, int, hbits*);
void convert_f16_to_f32(const hbits*, long long, float*);
void convert_bf16_to_f32(const hbits*, long long, float*);
void silu_multiply(const float*, const float*, long long, float*);
void add_inplace(float*, const float*, long long);
void add_bias_f32(float*, long long, int, int, const float*);
void add_bias_f16(float*, long long, int, int, const hbits*);
void add_bias_bf16(float*, long long, int, int, const hbits*);
void gather_rows_b32(const unsigned*, int, long long, const int*, int, unsigned*, int*);
void gather_rows_b16(const unsigned short*, int, long long, const int*, int, unsigned short*, int*);
void scatter_to_cache(const float*, long long, int, const int*, float*, int, int, int, int*);
void gather_from_cache(const float*, int, int, int, const int*, int, float*, long long, int*);
void rope_apply(const float*, long long, int, int, int, const int*, const float*, float*, long long);
void rms_norm_f32(const float*, long long, int, int, const float*, float, float*, long long);
void rms_norm_f16(const float*, long long, int, int, const hbits*, float, float*, long long);
void rms_norm_bf16(const float*, long long, int, int, const hbits*, float, float*, long long);
void rms_norm_heads_f32(float*, long long, int, int, int, const float*, float);
void rms_norm_heads_f16(float*, long long, int, int, int, const hbits*, float);
void rms_norm_heads_bf16(float*, long long, int, int, int, const hbits*, float);
void cache_deviation(const float*, long long, int, const int*, const float*, int, int, int, float*, int*);
void topk_select(const float*, int, int, int*);
#define DECL_ATT(HD) \
void attention_prefill_hd##HD(const float*, long long, const int*, int, const float*, const float*, const int*, int, int, int, int, float, float*, long long, float*); \
void attention_decode_hd##HD(const float*, long long, const int*, const float*, const float*, const int*, int, int, int, int, float, int, float*, float*); \
void attention_combine_hd##HD(const float*, const float*, int, int, float*, long long, float*); \
void attention_key_weights_hd##HD(const float*, long long, const int*, int, const float*, const int*, int, int, int, int, float, const float*, float*);
DECL_ATT(16) DECL_ATT(32) DECL_ATT(64) DECL_ATT(80) DECL_ATT(96) DECL_ATT(128) DECL_ATT(256)
}

// Device-like buffer: the data ends right before a PROT_NONE page, so any read or write past the end faults.
template <class T>
struct Buf
{
    size_t n = 0;
    T* p = nullptr;
    void* map = nullptr;
    size_t map_len = 0;
    explicit Buf(size_t count = 0) { alloc(count); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    ~Buf() { if (map) munmap(map, map_len); }
    void alloc(size_t count)
    {
        n = count;
        const size_t pg = 4096;
        const size_t bytes = std::max<size_t>(count * sizeof(T), 1);
        map_len = (bytes + 16 + pg - 1) / pg * pg + pg;
        map = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (getenv("EMU_GUARD_FRONT"))
        {
            // the guard page precedes the data: catches reads/writes before the start
            mprotect(map, pg, PROT_NONE);
            p = (T*)((char*)map + pg);
            return;
        }
        char* guard = (char*)map + map_len - pg;
        mprotect(guard, pg, PROT_NONE);
        uintptr_t a = ((uintptr_t)guard - count * sizeof(T)) & ~(uintptr_t)15;
        p = (T*)a;
    }
    T& operator[](size_t i) { return p[i]; }
    const T& operator[](size_t i) const { return p[i]; }
    void fill(T v) { for (size_t i = 0; i < n; i++) p[i] = v; }
};

inline std::mt19937_64& rng() { static std::mt19937_64 r(12345); return r; }
inline float urand(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng()); }
inline int irand(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); } // inclusive

extern int g_fail, g_pass;
inline bool report(bool ok, const std::string& name, const std::string& detail = "")
{
    if (ok) g_pass++; else g_fail++;
    if (!ok || getenv("VERBOSE")) printf("%s %s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
    fflush(stdout);
    return ok;
}

template <class... A> std::string fmt(const char* f, A... a) { char b[512]; snprintf(b, sizeof b, f, a...); return b; }

// Reference conversions, written independently of the kernels.
inline double half_value(hbits h)
{
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = std::ldexp((double)m, -24);
    else v = std::ldexp(1024.0 + m, e - 25);
    return s ? -v : v;
}
inline hbits ref_f32_to_f16(float f)
{
    if (f != f) return 0x7e00;
    const double a = std::fabs((double)f);
    hbits sign = std::signbit(f) ? 0x8000 : 0;
    if (a >= 65520.0) return sign | 0x7c00;
    int lo = 0, hi = 0x7bff; // largest pattern with value <= a
    while (lo < hi) { int mid = (lo + hi + 1) / 2; if (half_value(mid) <= a) lo = mid; else hi = mid - 1; }
    int best = lo;
    if (lo < 0x7bff)
    {
        const double d0 = a - half_value(lo), d1 = half_value(lo + 1) - a;
        if (d1 < d0 || (d1 == d0 && ((lo + 1) & 1) == 0)) best = lo + 1;
    }
    return sign | (hbits)best;
}
inline float ref_bf16_to_f32(hbits h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }
inline hbits ref_f32_to_bf16(float f)
{
    unsigned u; memcpy(&u, &f, 4);
    unsigned t = u >> 16, rem = u & 0xffff;
    if (rem > 0x8000 || (rem == 0x8000 && (t & 1))) t++;
    return (hbits)t;
}

struct ErrStat
{
    double max_err = 0; long long bad = 0, first = -1; double got = 0, want = 0;
    void add(long long i, double g, double w, double tol)
    {
        const double e = (g == w) ? 0.0 : (std::isnan(g) || std::isnan(w)) ? (std::isnan(g) && std::isnan(w) ? 0 : INFINITY) : std::fabs(g - w);
        if (e > max_err) max_err = e;
        if (!(e <= tol)) { if (bad++ == 0) { first = i; got = g; want = w; } }
    }
    std::string str() const { return bad ? fmt("bad=%lld first=%lld got=%.9g want=%.9g maxerr=%.3g", bad, first, got, want, max_err) : fmt("maxerr=%.3g", max_err); }
};
