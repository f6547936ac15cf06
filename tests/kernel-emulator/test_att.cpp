#include "test_common.h"

static const float QNAN = std::numeric_limits<float>::quiet_NaN();

struct AttFns
{
    decltype(&attention_prefill_hd16) prefill;
    decltype(&attention_decode_hd16) decode;
    decltype(&attention_combine_hd16) combine;
    decltype(&attention_key_weights_hd16) weights;
};

static AttFns fns(int hd)
{
    switch (hd)
    {
#define C(H) case H: return {attention_prefill_hd##H, attention_decode_hd##H, attention_combine_hd##H, attention_key_weights_hd##H};
        C(16) C(32) C(64) C(80) C(96) C(128) C(256)
#undef C
    }
    abort();
}

struct AttCase
{
    int hd, kv_heads, group, rows, key_count, capacity;
    int mask;     // 0 blend subset of 0..kc-1; 1 offset kpos (some rows see nothing); 2 duplicate key positions; 3 decode-like (all see all)
    int splits;   // for decode; 0 = skip decode
    int ldq_pad;
    float qmag = 2.0f; // |q| range
    int kmode = 0;     // 0 random keys; 1 scores rise with the slot; 2 scores fall with the slot
};

void run_att_case(const AttCase& c)
{
    const int HD = c.hd, heads = c.kv_heads * c.group, rows = c.rows, kc = c.key_count, cap = c.capacity;
    const long long ldq = (long long)heads * HD + c.ldq_pad, ldo = (long long)heads * HD + 3;
    const float scale_log2 = (float)(1.0 / std::sqrt((double)HD) * 1.4426950408889634);
    Buf<float> q(rows * ldq), kcache((long long)c.kv_heads * cap * HD), vcache((long long)c.kv_heads * cap * HD);
    Buf<int> qpos(rows), kpos(cap);
    for (long long i = 0; i < rows * ldq; i++) q[i] = c.kmode ? urand(0, c.qmag) : urand(-c.qmag, c.qmag);
    kcache.fill(QNAN);
    vcache.fill(QNAN);
    for (int h = 0; h < c.kv_heads; h++)
        for (int s = 0; s < kc; s++)
            for (int d = 0; d < HD; d++)
            {
                kcache[((long long)h * cap + s) * HD + d] = c.kmode == 0 ? urand(-2, 2) : (c.kmode == 1 ? 1 : -1) * 0.05f * s + urand(-0.1f, 0.1f);
                vcache[((long long)h * cap + s) * HD + d] = urand(-1, 1);
            }
    // key positions
    for (int s = 0; s < kc; s++)
        kpos[s] = c.mask == 1 ? s + 10 : c.mask == 2 ? s / 3 : s;
    for (int s = kc; s < cap; s++) kpos[s] = (s == kc && kc > 0) ? kpos[kc - 1] : 1 << 30; // junk beyond key_count
    // query positions, ascending
    const int maxp = kc > 0 ? kpos[kc - 1] : 0;
    std::vector<int> qp(rows);
    if (c.mask == 0)
    {
        std::vector<int> all(std::max(kc, rows));
        std::iota(all.begin(), all.end(), 0);
        std::shuffle(all.begin(), all.end(), rng());
        all.resize(rows);
        std::sort(all.begin(), all.end());
        qp = all;
    }
    else if (c.mask == 3)
    {
        for (int r = 0; r < rows; r++) qp[r] = maxp + r;
    }
    else
    {
        for (int r = 0; r < rows; r++) qp[r] = irand(c.mask == 1 ? 0 : -2, maxp + 2);
        std::sort(qp.begin(), qp.end());
    }
    for (int r = 0; r < rows; r++) qpos[r] = qp[r];

    // reference
    std::vector<double> ref_out((size_t)rows * heads * HD, 0.0), ref_lse((size_t)rows * heads, -INFINITY), ref_w(cap, 0.0);
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
        {
            const int kvh = h / c.group;
            std::vector<double> sc;
            std::vector<int> vis;
            for (int s = 0; s < kc; s++)
                if (kpos[s] <= qpos[r])
                {
                    double dot = 0;
                    for (int d = 0; d < HD; d++) dot += (double)q[r * ldq + h * HD + d] * kcache[((long long)kvh * cap + s) * HD + d];
                    sc.push_back(dot * (double)scale_log2);
                    vis.push_back(s);
                }
            if (vis.empty()) continue;
            const double mx = *std::max_element(sc.begin(), sc.end());
            double sum = 0;
            for (double& x : sc) { x = std::exp2(x - mx); sum += x; }
            ref_lse[r * heads + h] = mx + std::log2(sum);
            for (size_t i = 0; i < vis.size(); i++)
            {
                const double p = sc[i] / sum;
                ref_w[vis[i]] += p;
                for (int d = 0; d < HD; d++) ref_out[((size_t)r * heads + h) * HD + d] += p * vcache[((long long)kvh * cap + vis[i]) * HD + d];
            }
        }
    double omax = 1e-6;
    for (double v : ref_out) omax = std::max(omax, std::fabs(v));
    const std::string tag = fmt("HD=%d kvh=%d group=%d rows=%d kc=%d cap=%d mask=%d", HD, c.kv_heads, c.group, rows, kc, cap, c.mask);
    AttFns f = fns(HD);

    auto check_out = [&](const Buf<float>& out, const Buf<float>& lse, const char* which) {
        ErrStat so, sl;
        for (int r = 0; r < rows; r++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int d = 0; d < HD; d++) so.add(((long long)r * heads + h) * HD + d, out[r * ldo + h * HD + d], ref_out[((size_t)r * heads + h) * HD + d], 1e-4 * omax);
                const double wl = ref_lse[r * heads + h];
                const float gl = lse[r * heads + h];
                if (std::isinf(wl)) sl.add(r * heads + h, std::isinf(gl) && gl < 0 ? 0 : 1, 0, 0);
                else sl.add(r * heads + h, gl, wl, 1e-5 * std::max(1.0, std::fabs(wl)));
            }
            for (long long cc = (long long)heads * HD; cc < ldo; cc++) so.add(r * ldo + cc, std::isnan(out[r * ldo + cc]) ? 0 : 1, 0, 0);
        }
        report(so.bad == 0, fmt("%s out  %s", which, tag.c_str()), so.str());
        report(sl.bad == 0, fmt("%s lse  %s", which, tag.c_str()), sl.str());
    };

    // prefill
    Buf<float> out(rows * ldo), lse(rows * heads);
    out.fill(QNAN);
    lse.fill(QNAN);
    const size_t shp = (32 * HD + 32 * (HD + 1) + 32 * HD) * 4;
    emu_launch(dim3((rows + 31) / 32, heads), dim3(128), shp, [&] {
        f.prefill(q.p, ldq, qpos.p, rows, kcache.p, vcache.p, kpos.p, kc, cap, heads, c.group, scale_log2, out.p, ldo, lse.p);
    });
    check_out(out, lse, "prefill");
    {
        // lse == null must also work
        Buf<float> out2(rows * ldo);
        out2.fill(QNAN);
        emu_launch(dim3((rows + 31) / 32, heads), dim3(128), shp, [&] {
            f.prefill(q.p, ldq, qpos.p, rows, kcache.p, vcache.p, kpos.p, kc, cap, heads, c.group, scale_log2, out2.p, ldo, nullptr);
        });
        long long diff = 0;
        for (long long i = 0; i < rows * ldo; i++) diff += memcmp(&out[i], &out2[i], 4) != 0;
        report(diff == 0, fmt("prefill lse=null same out  %s", tag.c_str()), fmt("diff=%lld", diff));
    }

    // key weights from the prefill's lse
    {
        Buf<float> w(cap);
        w.fill(0.0f);
        emu_launch(dim3((kc + 127) / 128, heads), dim3(128), 0, [&] {
            f.weights(q.p, ldq, qpos.p, rows, kcache.p, kpos.p, kc, cap, heads, c.group, scale_log2, lse.p, w.p);
        });
        double wmax = 1e-6;
        for (double v : ref_w) wmax = std::max(wmax, v);
        ErrStat sw;
        for (int s = 0; s < cap; s++) sw.add(s, w[s], ref_w[s], 1e-4 * wmax);
        report(sw.bad == 0, fmt("key_weights  %s", tag.c_str()), sw.str());
    }

    // decode + combine
    if (c.splits > 0 && c.group <= 8)
    {
        const int splits = c.splits;
        const int split_size = std::max(1, (kc + splits - 1) / splits);
        Buf<float> po((long long)rows * heads * splits * HD), pml((long long)rows * heads * splits * 2);
        po.fill(QNAN);
        pml.fill(QNAN);
        const size_t shd = (c.group * HD + 8 * c.group * HD + 2 * 8 * c.group) * 4;
        emu_launch(dim3(c.kv_heads, splits, rows), dim3(256), shd, [&] {
            f.decode(q.p, ldq, qpos.p, kcache.p, vcache.p, kpos.p, kc, cap, heads, c.group, scale_log2, split_size, po.p, pml.p);
        });
        Buf<float> out3(rows * ldo), lse3(rows * heads);
        out3.fill(QNAN);
        lse3.fill(QNAN);
        const int cb = (rows + heads) % 2 ? HD : 128;
        emu_launch(dim3(rows * heads), dim3(cb), 0, [&] { f.combine(po.p, pml.p, heads, splits, out3.p, ldo, lse3.p); });
        check_out(out3, lse3, fmt("decode(splits=%d,size=%d)", splits, split_size).c_str());
    }
}

void run_att(const std::string& which)
{
    std::vector<AttCase> cases;
    if (which == "att" || which == "att1")
    {
        // HD sweep, blend masks
        cases.push_back({16, 2, 2, 37, 100, 130, 0, 3, 5});
        cases.push_back({32, 1, 4, 70, 300, 300, 0, 4, 0});
        cases.push_back({64, 2, 1, 33, 150, 160, 0, 2, 0});
        cases.push_back({128, 1, 2, 20, 90, 128, 0, 3, 1});
        cases.push_back({64, 1, 7, 9, 65, 70, 0, 2, 0});
    }
    if (which == "att" || which == "att2")
    {
        // offset kpos: rows that see nothing; duplicate positions; decode-like; small/odd
        cases.push_back({32, 2, 2, 40, 70, 80, 1, 3, 0});
        cases.push_back({16, 1, 7, 5, 33, 40, 2, 2, 0});
        cases.push_back({64, 1, 4, 1, 257, 300, 3, 5, 0});
        cases.push_back({128, 2, 1, 3, 31, 31, 3, 1, 0});
        cases.push_back({32, 1, 1, 1, 1, 8, 0, 1, 0});
        cases.push_back({16, 3, 2, 64, 64, 64, 0, 4, 0});
        cases.push_back({32, 1, 2, 2, 0, 4, 3, 1, 0}); // key_count 0
        cases.push_back({80, 1, 2, 10, 50, 60, 1, 2, 0});
        cases.push_back({96, 1, 1, 6, 40, 45, 2, 3, 0});
        cases.push_back({256, 1, 2, 4, 40, 40, 0, 2, 0});
        cases.push_back({64, 2, 8, 3, 100, 100, 3, 8, 0});
        cases.push_back({32, 1, 2, 6, 20, 20, 3, 12, 0}); // splits > needed: empty splits
    }
    if (which == "att" || which == "att3")
    {
        // online-softmax rescaling: running maximum changes in every tile, or only in the first
        for (int km : {1, 2})
        {
            cases.push_back({64, 1, 2, 40, 300, 310, 0, 4, 0, 2.0f, km});
            cases.push_back({32, 2, 3, 3, 200, 200, 3, 3, 0, 2.0f, km});
            cases.push_back({128, 1, 1, 35, 250, 256, 2, 5, 0, 2.0f, km});
        }
    }
    if (which.rfind("attfuzz", 0) == 0)
    {
        // attfuzzN: N random configurations (seeded by N so that runs are reproducible)
        const int count = atoi(which.c_str() + 7);
        rng().seed(1000 + count);
        const int hds[] = {16, 32, 64, 80, 96, 128, 256};
        for (int t = 0; t < count; t++)
        {
            AttCase c{};
            c.hd = hds[irand(0, 6)];
            c.group = irand(1, 8);
            c.kv_heads = irand(1, 2);
            c.rows = irand(1, 70);
            c.key_count = irand(0, 300);
            c.capacity = c.key_count + irand(0, 40);
            if (c.capacity == 0) c.capacity = 1;
            c.mask = irand(0, 3);
            c.splits = irand(1, 9);
            c.ldq_pad = irand(0, 1) * 4 + irand(0, 3);
            c.qmag = irand(0, 3) == 0 ? 20.0f : 2.0f;
            c.kmode = irand(0, 4) == 0 ? irand(1, 2) : 0;
            run_att_case(c);
        }
    }
    for (const AttCase& c : cases) run_att_case(c);
}
