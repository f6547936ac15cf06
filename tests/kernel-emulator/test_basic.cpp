#include "test_common.h"

static const float QNAN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------- embed
template <int DT>
static void test_embed(int vocab, int cols, int count, long long ldo, dim3 grid, dim3 block)
{
    Buf<float> tf(vocab * cols);
    Buf<hbits> th(vocab * cols);
    for (int i = 0; i < vocab * cols; i++)
    {
        tf[i] = urand(-3, 3);
        th[i] = (hbits)irand(0, 65535);
        if (DT == 1 && ((th[i] >> 10) & 31) == 31) th[i] &= 0xbfff; // keep finite for f16
    }
    Buf<int> ids(count);
    for (int i = 0; i < count; i++) ids[i] = irand(-2, vocab + 1);
    if (count > 0) ids[0] = vocab; // definitely bad
    Buf<float> out(count * ldo);
    out.fill(QNAN);
    Buf<int> err(1);
    err[0] = 0;
    emu_launch(grid, block, 0, [&] {
        if (DT == 0) embed_f32(tf.p, vocab, cols, ids.p, count, out.p, ldo, err.p);
        if (DT == 1) embed_f16(th.p, vocab, cols, ids.p, count, out.p, ldo, err.p);
        if (DT == 2) embed_bf16(th.p, vocab, cols, ids.p, count, out.p, ldo, err.p);
    });
    ErrStat st;
    bool any_bad = false;
    for (int r = 0; r < count; r++)
    {
        const int id = ids[r];
        const bool bad = id < 0 || id >= vocab;
        any_bad |= bad;
        for (int c = 0; c < ldo; c++)
        {
            const float g = out[r * ldo + c];
            if (c >= cols) { st.add(r * ldo + c, std::isnan(g) ? 0 : 1, 0, 0); continue; } // padding untouched
            double w = bad ? 0.0 : DT == 0 ? tf[id * cols + c] : DT == 1 ? half_value(th[id * cols + c]) : ref_bf16_to_f32(th[id * cols + c]);
            st.add(r * ldo + c, g, w, 0);
        }
    }
    report(st.bad == 0 && err[0] == (any_bad ? 1 : 0), fmt("embed dt=%d vocab=%d cols=%d count=%d grid=%u block=%u", DT, vocab, cols, count, grid.x, block.x), st.str() + fmt(" err=%d", err[0]));
}

// ---------------------------------------------------------------- conversions
static float special_float(int i)
{
    static const float sp[] = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e9f, -1e9f, INFINITY, -INFINITY, QNAN,
                               -QNAN, 5.96046448e-8f, 2.98023224e-8f, 2.98023225e-8f, 8.940697e-8f, 6.1035156e-5f, 6.1e-5f, 3.4028235e38f,
                               -3.4028235e38f, 1.0009765625f + 0.00048828125f /*tie*/, 1.00048828125f, 1e-45f, 1.17549435e-38f};
    const int n = sizeof(sp) / sizeof(sp[0]);
    if (i < n) return sp[i];
    switch (i % 4)
    {
    case 0: return urand(-70000, 70000);
    case 1: return std::ldexp(urand(-1, 1), irand(-30, 20));
    case 2: { unsigned u = (unsigned)rng()(); float f; memcpy(&f, &u, 4); return f; }
    default: { unsigned u = ((unsigned)rng()() & 0xffff0000u) | 0x8000u; float f; memcpy(&f, &u, 4); return f; } // bf16 ties
    }
}

template <int DT>
static void test_convert_to_half(int rows, int cols, long long ldx, dim3 grid, dim3 block)
{
    Buf<float> x(rows * ldx);
    for (long long i = 0; i < rows * ldx; i++) x[i] = special_float((int)i);
    Buf<hbits> out(rows * cols);
    out.fill(0xdead);
    emu_launch(grid, block, 0, [&] {
        if (DT == 1) convert_f32_to_f16(x.p, ldx, rows, cols, out.p);
        else convert_f32_to_bf16(x.p, ldx, rows, cols, out.p);
    });
    long long bad = 0, first = -1;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
        {
            const float f = x[r * ldx + c];
            const hbits g = out[r * cols + c];
            bool ok;
            if (f != f) ok = DT == 1 ? (((g >> 10) & 31) == 31 && (g & 1023)) : (((g >> 7) & 255) == 255 && (g & 127) && (g & 0x40));
            else ok = g == (DT == 1 ? ref_f32_to_f16(f) : ref_f32_to_bf16(f));
            if (!ok && bad++ == 0) first = r * cols + c;
        }
    report(bad == 0, fmt("convert_f32_to_%s rows=%d cols=%d ldx=%lld", DT == 1 ? "f16" : "bf16", rows, cols, ldx),
           bad ? fmt("bad=%lld first=%lld x=%.9g got=0x%04x want=0x%04x", bad, first, x[(first / cols) * ldx + first % cols], out[first],
                     DT == 1 ? ref_f32_to_f16(x[(first / cols) * ldx + first % cols]) : ref_f32_to_bf16(x[(first / cols) * ldx + first % cols]))
               : "");
}

template <int DT>
static void test_convert_to_f32()
{
    const int n = 65536;
    Buf<hbits> x(n);
    for (int i = 0; i < n; i++) x[i] = (hbits)i;
    Buf<float> out(n);
    out.fill(12345.0f);
    emu_launch(dim3(7), dim3(256), 0, [&] {
        if (DT == 1) convert_f16_to_f32(x.p, n, out.p);
        else convert_bf16_to_f32(x.p, n, out.p);
    });
    ErrStat st;
    for (int i = 0; i < n; i++) st.add(i, out[i], DT == 1 ? half_value(x[i]) : ref_bf16_to_f32(x[i]), 0);
    report(st.bad == 0, fmt("convert_%s_to_f32 all 65536 patterns", DT == 1 ? "f16" : "bf16"), st.str());
}

// ---------------------------------------------------------------- silu, add, bias
static void test_silu(long long n, dim3 grid, dim3 block)
{
    Buf<float> g(n), u(n), o(n);
    for (long long i = 0; i < n; i++) { g[i] = i % 17 == 0 ? -100.0f : urand(-8, 8); u[i] = urand(-2, 2); }
    o.fill(QNAN);
    emu_launch(grid, block, 0, [&] { silu_multiply(g.p, u.p, n, o.p); });
    ErrStat st;
    for (long long i = 0; i < n; i++)
    {
        const double w = (double)g[i] / (1.0 + std::exp(-(double)g[i])) * u[i];
        st.add(i, o[i], w, 1e-6 * std::fabs(w) + 1e-30);
    }
    report(st.bad == 0, fmt("silu_multiply n=%lld grid=%u block=%u", n, grid.x, block.x), st.str());
}

static void test_add(long long n, dim3 grid, dim3 block)
{
    Buf<float> t(n), s(n);
    std::vector<float> want(n);
    for (long long i = 0; i < n; i++) { t[i] = urand(-5, 5); s[i] = urand(-5, 5); want[i] = t[i] + s[i]; }
    emu_launch(grid, block, 0, [&] { add_inplace(t.p, s.p, n); });
    ErrStat st;
    for (long long i = 0; i < n; i++) st.add(i, t[i], want[i], 0);
    report(st.bad == 0, fmt("add_inplace n=%lld grid=%u block=%u", n, grid.x, block.x), st.str());
}

template <int DT>
static void test_bias(int rows, int cols, long long ldo, dim3 grid, dim3 block)
{
    Buf<float> o(rows * ldo), bf(cols);
    Buf<hbits> bh(cols);
    std::vector<float> orig(rows * ldo);
    for (long long i = 0; i < rows * ldo; i++) orig[i] = o[i] = urand(-5, 5);
    for (int c = 0; c < cols; c++) { bf[c] = urand(-1, 1); bh[c] = DT == 1 ? ref_f32_to_f16(bf[c]) : ref_f32_to_bf16(bf[c]); }
    emu_launch(grid, block, 0, [&] {
        if (DT == 0) add_bias_f32(o.p, ldo, rows, cols, bf.p);
        if (DT == 1) add_bias_f16(o.p, ldo, rows, cols, bh.p);
        if (DT == 2) add_bias_bf16(o.p, ldo, rows, cols, bh.p);
    });
    ErrStat st;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ldo; c++)
        {
            float b = DT == 0 ? bf[c < cols ? c : 0] : DT == 1 ? (float)half_value(bh[c < cols ? c : 0]) : ref_bf16_to_f32(bh[c < cols ? c : 0]);
            const float w = c < cols ? orig[r * ldo + c] + b : orig[r * ldo + c];
            st.add(r * ldo + c, o[r * ldo + c], w, 0);
        }
    report(st.bad == 0, fmt("add_bias dt=%d rows=%d cols=%d ldo=%lld", DT, rows, cols, ldo), st.str());
}

// ---------------------------------------------------------------- gathers, cache
template <class W>
static void test_gather_rows(int source_rows, long long row_words, int count, bool with_bad, dim3 grid, dim3 block)
{
    Buf<W> src(source_rows * row_words), dst(count * row_words);
    for (long long i = 0; i < source_rows * row_words; i++) src[i] = (W)rng()();
    Buf<int> idx(count);
    for (int i = 0; i < count; i++) idx[i] = irand(0, source_rows - 1);
    if (with_bad) { idx[count / 2] = source_rows; idx[count - 1] = -1; }
    const W sentinel = (W)0xA5A5A5A5u;
    dst.fill(sentinel);
    Buf<int> err(1);
    err[0] = 0;
    emu_launch(grid, block, 0, [&] {
        if constexpr (sizeof(W) == 4) gather_rows_b32(src.p, source_rows, row_words, idx.p, count, dst.p, err.p);
        else gather_rows_b16(src.p, source_rows, row_words, idx.p, count, dst.p, err.p);
    });
    long long bad = 0, unwritten = 0;
    for (int i = 0; i < count; i++)
    {
        const bool ok_idx = idx[i] >= 0 && idx[i] < source_rows;
        for (long long c = 0; c < row_words; c++)
        {
            if (ok_idx) bad += dst[i * row_words + c] != src[idx[i] * row_words + c];
            else unwritten += dst[i * row_words + c] == sentinel;
        }
    }
    report(bad == 0 && err[0] == (with_bad ? 3 : 0), fmt("gather_rows_b%d src_rows=%d words=%lld count=%d bad_idx=%d", (int)sizeof(W) * 8, source_rows, row_words, count, with_bad),
           fmt("bad=%lld err=%d (rows with bad index left unwritten: %lld words)", bad, err[0], unwritten));
}

static void test_cache(int rows, int kv_heads, int capacity, int head_dim, long long lds, bool with_bad, dim3 grid, dim3 block)
{
    const int width = kv_heads * head_dim;
    Buf<float> src(rows * lds), cache(kv_heads * capacity * head_dim), back(rows * lds);
    for (long long i = 0; i < rows * lds; i++) src[i] = urand(-1, 1);
    std::vector<int> perm(capacity);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng());
    Buf<int> slots(rows);
    for (int r = 0; r < rows; r++) slots[r] = perm[r];
    if (with_bad) slots[rows - 1] = capacity;
    cache.fill(-7.0f);
    back.fill(QNAN);
    Buf<int> err(1);
    err[0] = 0;
    emu_launch(grid, block, 0, [&] { scatter_to_cache(src.p, lds, rows, slots.p, cache.p, kv_heads, capacity, head_dim, err.p); });
    const int e1 = err[0];
    err[0] = 0;
    emu_launch(grid, block, 0, [&] { gather_from_cache(cache.p, kv_heads, capacity, head_dim, slots.p, rows, back.p, lds, err.p); });
    const int e2 = err[0];
    long long bad = 0;
    std::vector<float> want(kv_heads * capacity * head_dim, -7.0f);
    for (int r = 0; r < rows; r++)
    {
        if (slots[r] >= capacity) continue;
        for (int c = 0; c < width; c++)
        {
            want[((long long)(c / head_dim) * capacity + slots[r]) * head_dim + c % head_dim] = src[r * lds + c];
            bad += back[r * lds + c] != src[r * lds + c];
        }
        for (long long c = width; c < lds; c++) bad += !std::isnan(back[r * lds + c]);
    }
    for (size_t i = 0; i < want.size(); i++) bad += cache[i] != want[i];
    const int ewant = with_bad ? 2 : 0;
    report(bad == 0 && e1 == ewant && e2 == ewant, fmt("scatter/gather cache rows=%d kvh=%d cap=%d hd=%d lds=%lld bad=%d", rows, kv_heads, capacity, head_dim, lds, with_bad),
           fmt("bad=%lld err=%d,%d", bad, e1, e2));
}

// ---------------------------------------------------------------- rope
static void test_rope(int rows, int heads, int head_dim, long long ldx, long long ldo, bool inplace, dim3 grid, dim3 block)
{
    const int cols = heads * head_dim;
    const int half = head_dim / 2;
    Buf<float> x(rows * ldx), out(rows * (inplace ? ldx : ldo));
    for (long long i = 0; i < rows * ldx; i++) x[i] = urand(-2, 2);
    std::vector<float> x0(x.p, x.p + rows * ldx);
    Buf<int> pos(rows);
    for (int r = 0; r < rows; r++) pos[r] = irand(-300, 40000);
    Buf<float> inv(half);
    for (int j = 0; j < half; j++) inv[j] = (float)std::pow(1000000.0, -2.0 * j / head_dim);
    if (!inplace) out.fill(QNAN);
    float* o = inplace ? x.p : out.p;
    const long long lo = inplace ? ldx : ldo;
    emu_launch(grid, block, 0, [&] { rope_apply(x.p, ldx, rows, cols, head_dim, pos.p, inv.p, o, lo); });
    ErrStat st;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < half; j++)
            {
                const float angle = (float)pos[r] * inv[j];
                const double c = std::cos((double)angle), s = std::sin((double)angle);
                const double a = x0[r * ldx + h * head_dim + j], b = x0[r * ldx + h * head_dim + j + half];
                st.add(r * lo + h * head_dim + j, o[r * lo + h * head_dim + j], a * c - b * s, 2e-6 * (std::fabs(a) + std::fabs(b)) + 1e-7);
                st.add(r * lo + h * head_dim + j + half, o[r * lo + h * head_dim + j + half], b * c + a * s, 2e-6 * (std::fabs(a) + std::fabs(b)) + 1e-7);
            }
    if (!inplace)
        for (int r = 0; r < rows; r++)
            for (long long c = cols; c < ldo; c++) st.add(r * ldo + c, std::isnan(out[r * ldo + c]) ? 0 : 1, 0, 0);
    report(st.bad == 0, fmt("rope rows=%d heads=%d hd=%d inplace=%d grid=%u block=%u", rows, heads, head_dim, inplace, grid.x, block.x), st.str());
}

static void test_import(int kvh, int count, int hd, int cap, int first, bool rope, dim3 grid, dim3 block)
{
    const int half = hd / 2;
    Buf<hbits> src(kvh * count * hd);
    for (int i = 0; i < kvh * count * hd; i++) src[i] = ref_f32_to_f16(urand(-2, 2));
    Buf<float> cache(kvh * cap * hd);
    for (int i = 0; i < kvh * cap * hd; i++) cache[i] = urand(-1, 1);
    std::vector<float> c0(cache.p, cache.p + kvh * cap * hd);
    Buf<int> pos(count);
    for (int t = 0; t < count; t++) pos[t] = irand(-100, 9000);
    Buf<float> inv(half);
    for (int j = 0; j < half; j++) inv[j] = (float)std::pow(10000.0, -2.0 * j / hd);
    emu_launch(grid, block, 0, [&] { import_half_to_cache(src.p, count, kvh, hd, cache.p, cap, first, rope ? pos.p : nullptr, rope ? inv.p : nullptr); });
    ErrStat st;
    for (int h = 0; h < kvh; h++)
        for (int s = 0; s < cap; s++)
            for (int d = 0; d < hd; d++)
            {
                const long long at = ((long long)h * cap + s) * hd + d;
                const int t = s - first;
                if (t < 0 || t >= count) { st.add(at, cache[at], c0[at], 0); continue; }
                const int j = d < half ? d : d - half;
                const double a = half_value(src[(h * count + t) * hd + j]);
                const double b = half_value(src[(h * count + t) * hd + j + half]);
                double e = d < half ? a : b;
                if (rope)
                {
                    const float angle = (float)pos[t] * inv[j];
                    const double c = std::cos((double)angle), sn = std::sin((double)angle);
                    e = d < half ? a * c - b * sn : b * c + a * sn;
                }
                st.add(at, cache[at], e, 2e-6 * (std::fabs(a) + std::fabs(b)) + 1e-7);
            }
    report(st.bad == 0, fmt("import kvh=%d count=%d hd=%d cap=%d first=%d rope=%d", kvh, count, hd, cap, first, rope), st.str());
}

// ---------------------------------------------------------------- rms norm
template <int DT>
static void test_rms(int rows, int cols, long long ldx, long long ldo, dim3 grid, dim3 block)
{
    Buf<float> x(rows * ldx), out(rows * ldo), wf(cols);
    Buf<hbits> wh(cols);
    for (long long i = 0; i < rows * ldx; i++) x[i] = urand(-3, 3);
    for (int c = 0; c < cols; c++) { wf[c] = urand(0.5f, 1.5f); wh[c] = DT == 1 ? ref_f32_to_f16(wf[c]) : ref_f32_to_bf16(wf[c]); }
    out.fill(QNAN);
    const float eps = 1e-6f;
    emu_launch(grid, block, 0, [&] {
        if (DT == 0) rms_norm_f32(x.p, ldx, rows, cols, wf.p, eps, out.p, ldo);
        if (DT == 1) rms_norm_f16(x.p, ldx, rows, cols, wh.p, eps, out.p, ldo);
        if (DT == 2) rms_norm_bf16(x.p, ldx, rows, cols, wh.p, eps, out.p, ldo);
    });
    ErrStat st;
    for (int r = 0; r < rows; r++)
    {
        double ss = 0;
        for (int c = 0; c < cols; c++) ss += (double)x[r * ldx + c] * x[r * ldx + c];
        const double sc = 1.0 / std::sqrt(ss / cols + eps);
        for (int c = 0; c < cols; c++)
        {
            const double w = DT == 0 ? wf[c] : DT == 1 ? half_value(wh[c]) : ref_bf16_to_f32(wh[c]);
            const double want = w * x[r * ldx + c] * sc;
            st.add(r * ldo + c, out[r * ldo + c], want, 1e-5 * std::fabs(want) + 1e-6);
        }
        for (long long c = cols; c < ldo; c++) st.add(r * ldo + c, std::isnan(out[r * ldo + c]) ? 0 : 1, 0, 0);
    }
    report(st.bad == 0, fmt("rms_norm dt=%d rows=%d cols=%d grid=%u block=%u", DT, rows, cols, grid.x, block.x), st.str());
}

template <int DT>
static void test_rms_heads(int rows, int heads, int head_dim, long long ldx, dim3 grid, dim3 block)
{
    const int cols = heads * head_dim;
    Buf<float> x(rows * ldx), wf(head_dim);
    Buf<hbits> wh(head_dim);
    for (long long i = 0; i < rows * ldx; i++) x[i] = urand(-3, 3);
    std::vector<float> x0(x.p, x.p + rows * ldx);
    for (int c = 0; c < head_dim; c++) { wf[c] = urand(0.5f, 1.5f); wh[c] = DT == 1 ? ref_f32_to_f16(wf[c]) : ref_f32_to_bf16(wf[c]); }
    const float eps = 1e-6f;
    emu_launch(grid, block, 0, [&] {
        if (DT == 0) rms_norm_heads_f32(x.p, ldx, rows, cols, head_dim, wf.p, eps);
        if (DT == 1) rms_norm_heads_f16(x.p, ldx, rows, cols, head_dim, wh.p, eps);
        if (DT == 2) rms_norm_heads_bf16(x.p, ldx, rows, cols, head_dim, wh.p, eps);
    });
    ErrStat st;
    for (int r = 0; r < rows; r++)
    {
        for (int h = 0; h < heads; h++)
        {
            double ss = 0;
            for (int d = 0; d < head_dim; d++) ss += (double)x0[r * ldx + h * head_dim + d] * x0[r * ldx + h * head_dim + d];
            const double sc = 1.0 / std::sqrt(ss / head_dim + eps);
            for (int d = 0; d < head_dim; d++)
            {
                const double w = DT == 0 ? wf[d] : DT == 1 ? half_value(wh[d]) : ref_bf16_to_f32(wh[d]);
                const double want = w * x0[r * ldx + h * head_dim + d] * sc;
                st.add(r * ldx + h * head_dim + d, x[r * ldx + h * head_dim + d], want, 1e-5 * std::fabs(want) + 1e-6);
            }
        }
        for (long long c = cols; c < ldx; c++) st.add(r * ldx + c, x[r * ldx + c], x0[r * ldx + c], 0);
    }
    report(st.bad == 0, fmt("rms_norm_heads dt=%d rows=%d heads=%d hd=%d grid=%u block=%u", DT, rows, heads, head_dim, grid.x, block.x), st.str());
}

// ---------------------------------------------------------------- cache deviation
static void test_deviation(int rows, int kv_heads, int capacity, int head_dim, long long ldf, bool with_bad, dim3 grid, dim3 block)
{
    const int width = kv_heads * head_dim;
    Buf<float> fresh(rows * ldf), cache(kv_heads * capacity * head_dim), out(rows);
    for (long long i = 0; i < rows * ldf; i++) fresh[i] = urand(-1, 1);
    for (long long i = 0; i < kv_heads * capacity * head_dim; i++) cache[i] = urand(-1, 1);
    Buf<int> slots(rows);
    for (int r = 0; r < rows; r++) slots[r] = irand(0, capacity - 1);
    if (with_bad) slots[0] = -3;
    out.fill(QNAN);
    Buf<int> err(1);
    err[0] = 0;
    emu_launch(grid, block, 0, [&] { cache_deviation(fresh.p, ldf, rows, slots.p, cache.p, kv_heads, capacity, head_dim, out.p, err.p); });
    ErrStat st;
    for (int r = 0; r < rows; r++)
    {
        double s = 0;
        if (slots[r] >= 0 && slots[r] < capacity)
            for (int c = 0; c < width; c++)
            {
                const double d = (double)fresh[r * ldf + c] - cache[((long long)(c / head_dim) * capacity + slots[r]) * head_dim + c % head_dim];
                s += d * d;
            }
        st.add(r, out[r], s, 1e-5 * s + 1e-7);
    }
    report(st.bad == 0 && err[0] == (with_bad ? 2 : 0), fmt("cache_deviation rows=%d kvh=%d hd=%d grid=%u block=%u bad=%d", rows, kv_heads, head_dim, grid.x, block.x, with_bad), st.str() + fmt(" err=%d", err[0]));
}

// ---------------------------------------------------------------- top-k
// Reference: stable sort by (value desc, NaN last, index asc); take k; sort indices.
static std::vector<int> ref_topk(const float* s, int n, int k)
{
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    auto key = [](float f) -> unsigned {
        if (f != f) return 0u;
        unsigned u; memcpy(&u, &f, 4);
        return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    };
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return key(s[a]) > key(s[b]); });
    idx.resize(k);
    std::sort(idx.begin(), idx.end());
    return idx;
}

static void test_topk(const std::vector<float>& scores, int k, const char* what)
{
    const int n = (int)scores.size();
    Buf<float> s(n);
    for (int i = 0; i < n; i++) s[i] = scores[i];
    Buf<int> idx(std::max(k, 1));
    idx.fill(-99);
    emu_launch(dim3(1), dim3(1024), 0, [&] { topk_select(s.p, n, k, idx.p); });
    const std::vector<int> want = ref_topk(s.p, n, k);
    long long bad = 0, first = -1;
    for (int i = 0; i < k; i++)
        if (idx[i] != want[i] && bad++ == 0) first = i;
    report(bad == 0, fmt("topk %s n=%d k=%d", what, n, k),
           bad ? fmt("bad=%lld first pos=%lld got=%d (score %.9g) want=%d (score %.9g)", bad, first, idx[first],
                     idx[first] >= 0 && idx[first] < n ? s[idx[first]] : NAN, want[first], s[want[first]]) : "");
}

static void topk_suite()
{
    for (int n : {1, 7, 33, 1000, 1024, 1025, 5000})
    {
        for (int kind = 0; kind < 5; kind++)
        {
            std::vector<float> v(n);
            for (int i = 0; i < n; i++)
            {
                switch (kind)
                {
                case 0: v[i] = urand(-1, 1); break;                                   // distinct-ish
                case 1: v[i] = (float)irand(-3, 3); break;                            // many ties incl. negative
                case 2: v[i] = -(float)irand(1, 4) * 0.25f; break;                    // all negative with ties
                case 3: v[i] = irand(0, 9) == 0 ? QNAN : (float)irand(0, 2); break;   // NaN + ties
                case 4: v[i] = irand(0, 3) == 0 ? -INFINITY : irand(0, 5) == 0 ? INFINITY : urand(-1e30f, 1e30f); break;
                }
            }
            std::vector<int> ks = {1, n};
            if (n > 2) { ks.push_back(n / 2); ks.push_back(n - 1); ks.push_back(irand(1, n)); }
            for (int k : ks) test_topk(v, k, fmt("kind=%d", kind).c_str());
        }
    }
    // all equal, all NaN, +0/-0 (equal under float comparison: ties by index)
    test_topk(std::vector<float>(3000, 0.5f), 1234, "all-equal");
    test_topk(std::vector<float>(100, QNAN), 10, "all-nan");
    {
        std::vector<float> v(64);
        for (int i = 0; i < 64; i++) v[i] = (i % 2) ? 0.0f : -0.0f;
        test_topk(v, 10, "signed-zeros");
    }
}

static void topk_fuzz(int count)
{
    for (int t = 0; t < count; t++)
    {
        const int n = irand(0, 3) == 0 ? irand(1, 64) : irand(1, 5000);
        const unsigned base = (unsigned)rng()();
        std::vector<float> v(n);
        const int mode = irand(0, 2);
        for (int i = 0; i < n; i++)
        {
            unsigned u;
            if (mode == 0) u = (base & 0xffffff00u) | (unsigned)irand(0, 7);             // differ in the last radix digit only
            else if (mode == 1) u = (base & 0xff000000u) | ((unsigned)irand(0, 3) << 12) | (unsigned)irand(0, 3);
            else u = (unsigned)rng()();
            if (irand(0, 30) == 0) u = 0x7fc00000u | (unsigned)irand(0, 5) | (irand(0, 1) ? 0x80000000u : 0u); // NaNs
            if (irand(0, 30) == 0) u = irand(0, 1) ? 0x80000000u : 0u;                                    // signed zeros
            float f; memcpy(&f, &u, 4);
            v[i] = f;
        }
        test_topk(v, irand(1, n), fmt("fuzz mode=%d", mode).c_str());
    }
}

void run_basic(const std::string& which)
{
    auto want = [&](const char* g) { return which == "all" || which == g; };
    if (want("embed"))
    {
        test_embed<0>(37, 67, 13, 70, dim3(5), dim3(64));
        test_embed<1>(37, 67, 13, 67, dim3(1), dim3(256));
        test_embed<2>(37, 1, 40, 3, dim3(100), dim3(32));
        test_embed<0>(5, 300, 9, 301, dim3(3), dim3(96));
    }
    if (want("convert"))
    {
        for (int dt : {1, 2})
        {
            if (dt == 1) { test_convert_to_half<1>(17, 33, 40, dim3(3), dim3(64)); test_convert_to_half<1>(1, 4096, 4096, dim3(2), dim3(256)); }
            else { test_convert_to_half<2>(17, 33, 40, dim3(3), dim3(64)); test_convert_to_half<2>(1, 4096, 4096, dim3(2), dim3(256)); }
        }
        test_convert_to_f32<1>();
        test_convert_to_f32<2>();
    }
    if (want("silu"))
    {
        for (long long n : {1LL, 3LL, 4LL, 5LL, 1027LL}) { test_silu(n, dim3(2), dim3(64)); test_add(n, dim3(3), dim3(32)); }
        test_silu(4099, dim3(1), dim3(1024));
        test_add(4099, dim3(1), dim3(1024));
        test_bias<0>(7, 33, 40, dim3(2), dim3(64));
        test_bias<1>(7, 33, 33, dim3(9), dim3(128));
        test_bias<2>(3, 100, 101, dim3(1), dim3(256));
    }
    if (want("gather"))
    {
        test_gather_rows<unsigned>(20, 37, 15, false, dim3(4), dim3(64));
        test_gather_rows<unsigned>(20, 37, 15, true, dim3(4), dim3(64));
        test_gather_rows<unsigned short>(9, 130, 30, false, dim3(50), dim3(128));
        test_gather_rows<unsigned short>(9, 130, 30, true, dim3(50), dim3(128));
        test_cache(13, 3, 40, 16, 48, false, dim3(4), dim3(32));
        test_cache(13, 3, 40, 16, 50, true, dim3(4), dim3(32));
        test_cache(5, 2, 7, 80, 161, false, dim3(1), dim3(256));
    }
    if (want("rope"))
    {
        test_rope(5, 3, 64, 192, 200, false, dim3(2), dim3(64));
        test_rope(7, 2, 128, 260, 0, true, dim3(3), dim3(128));
        test_rope(33, 4, 16, 64, 64, false, dim3(1), dim3(1024));
        test_rope(3, 5, 80, 400, 403, false, dim3(64), dim3(32));
        test_import(2, 23, 64, 40, 9, true, dim3(3), dim3(64));
        test_import(2, 23, 64, 40, 9, false, dim3(3), dim3(64));
        test_import(3, 7, 128, 7, 0, true, dim3(100), dim3(256));
        test_import(1, 1, 16, 5, 4, true, dim3(1), dim3(32));
    }
    if (want("norm"))
    {
        for (int blk : {32, 96, 256, 1024})
        {
            test_rms<0>(5, 1, 1, 3, dim3(2), dim3(blk));
            test_rms<0>(6, 1000, 1003, 1001, dim3(4), dim3(blk));
            test_rms<1>(3, 33, 33, 40, dim3(3), dim3(blk));
            test_rms<2>(4, 2048, 2048, 2048, dim3(1), dim3(blk));
        }
        test_rms_heads<0>(5, 4, 128, 520, dim3(1), dim3(64));
        test_rms_heads<0>(9, 3, 16, 48, dim3(2), dim3(128));
        test_rms_heads<1>(7, 5, 64, 321, dim3(3), dim3(96));
        test_rms_heads<2>(7, 2, 80, 200, dim3(5), dim3(32));
        test_rms_heads<0>(3, 2, 256, 512, dim3(1), dim3(1024));
    }
    if (want("deviation"))
    {
        test_deviation(9, 2, 50, 64, 130, false, dim3(4), dim3(128));
        test_deviation(9, 2, 50, 64, 130, true, dim3(2), dim3(64));
        test_deviation(4, 8, 20, 128, 1024, false, dim3(4), dim3(1024));
        test_deviation(3, 1, 5, 16, 16, false, dim3(1), dim3(32));
    }
    if (want("topk")) { topk_suite(); topk_fuzz(200); }
}
