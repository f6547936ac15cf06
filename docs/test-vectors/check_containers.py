#!/usr/bin/env python3
"""Independent reader of the container test vectors, written from docs/kv-container.md only (no KvFusion code).

Pure Python 3, no packages: parses every file in containers/, checks header fields and checksums against
containers.json, decodes raw, lz4, fp8 and cachegen (inline statistics) sections and compares the decoded checksum.
Usage: python3 docs/test-vectors/check_containers.py
"""
import json, math, os, struct, sys

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5

def rotl(x, r): return ((x << r) | (x >> (64 - r))) & M64
def rnd(acc, v): return (rotl((acc + v * P2) & M64, 31) * P1) & M64
def merge(acc, v): return (((acc ^ rnd(0, v)) * P1) + P4) & M64

def xxh64(data, seed=0):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed & M64, (seed - P1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], struct.unpack_from('<Q', data, i + 8 * k)[0])
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M64
        for k in range(4):
            h = merge(h, v[k])
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = ((rotl(h ^ rnd(0, struct.unpack_from('<Q', data, i)[0]), 27) * P1) + P4) & M64; i += 8
    if i + 4 <= n:
        h = ((rotl(h ^ ((struct.unpack_from('<I', data, i)[0] * P1) & M64), 23) * P2) + P3) & M64; i += 4
    while i < n:
        h = (rotl(h ^ ((data[i] * P5) & M64), 11) * P1) & M64; i += 1
    h ^= h >> 33; h = (h * P2) & M64; h ^= h >> 29; h = (h * P3) & M64; h ^= h >> 32
    return h

def f32(x): return struct.unpack('<f', struct.pack('<f', x))[0]
def f16bits(x): return struct.unpack('<H', struct.pack('<e', x))[0]   # x is an exact fp32 value: one rounding
def h2f(bits): return struct.unpack('<e', struct.pack('<H', bits))[0]

def lz4_block(src, n):
    out, i = bytearray(), 0
    while True:
        tok = src[i]; i += 1
        lit = tok >> 4
        if lit == 15:
            while True:
                b = src[i]; i += 1; lit += b
                if b != 255: break
        out += src[i:i + lit]; i += lit
        if i == len(src): break
        off = src[i] | (src[i + 1] << 8); i += 2
        ml = tok & 15
        if ml == 15:
            while True:
                b = src[i]; i += 1; ml += b
                if b != 255: break
        ml += 4
        for _ in range(ml): out.append(out[-off])
    assert len(out) == n, 'lz4 plane length'
    return bytes(out)

def dec_raw(p, H, T, W):
    assert len(p) == 2 * H * T * W
    return list(struct.unpack('<%dH' % (H * T * W), p))

def dec_lz4(p, H, T, W):
    n = H * T * W
    q = (n + 7) // 8
    assert p[0] == 1, 'lz4 layout'
    code = list(p[1:33])
    assert sorted(code) == list(range(32)), 'exponent codes are a permutation'
    lengths = struct.unpack_from('<16I', p, 33)
    assert all(l <= q for l in lengths) and len(p) == 97 + sum(lengths)
    planes, at = [], 97
    for l in lengths:
        plane = p[at:at + l]; at += l
        planes.append(plane if l == q else lz4_block(plane, q))
    exponent = [0] * 32
    for e, c in enumerate(code): exponent[c] = e
    out = []
    for i in range(n):
        v = 0
        for b in range(16): v |= ((planes[b][i >> 3] >> (i & 7)) & 1) << b
        out.append((v & ~(31 << 10)) | (exponent[(v >> 10) & 31] << 10))
    for b in range(16):
        for i in range(n, 8 * q): assert (planes[b][i >> 3] >> (i & 7)) & 1 == 0, 'padding bits'
    return out

def e4m3(c):
    m = c & 0x7F
    assert m != 0x7F, 'NaN code'
    e, f = m >> 3, m & 7
    v = f * 2.0 ** -9 if e == 0 else (1 + f / 8) * 2.0 ** (e - 7)
    return -v if c & 0x80 else v

def dec_fp8(p, H, T, W):
    n = H * T * W
    assert len(p) == 4 * T + n
    scales = struct.unpack_from('<%df' % T, p)
    out = [0] * n
    for h in range(H):
        for t in range(T):
            for d in range(W):
                i = (h * T + t) * W + d
                out[i] = f16bits(f32(e4m3(p[4 * T + i]) * scales[t]))
    return out

def from_counts(counts, s):
    m, total = 1 << s, sum(counts)
    f, rem = [0] * len(counts), [0] * len(counts)
    for k, c in enumerate(counts):
        if c > 0:
            f[k], rem[k] = (c * m) // total, (c * m) % total
            if f[k] == 0: f[k], rem[k] = 1, 0
    deficit = m - sum(f)
    if deficit > 0:
        order = sorted([k for k in range(len(f)) if f[k] > 0], key=lambda k: (-rem[k], k))
        j = 0
        while deficit > 0:
            f[order[j % len(order)]] += 1; deficit -= 1; j += 1
    while deficit < 0:
        k = max(range(len(f)), key=lambda k: (f[k], -k))
        assert f[k] > 1
        f[k] -= 1; deficit += 1
    return f

def geometric(alphabet, center, spread):
    w8 = [0] * alphabet
    theta, w = 1024 * spread + 512, 1 << 16
    w8[center] = w
    k = 1
    while center - k >= 0 or center + k < alphabet:
        w = max(1, (w * theta) >> 16)
        if center - k >= 0: w8[center - k] = w
        if center + k < alphabet: w8[center + k] = w
        k += 1
    f = from_counts(w8, 12)
    cum = [sum(f[:k]) for k in range(alphabet)]
    slot = []
    for k in range(alphabet): slot += [k] * f[k]
    return f, cum, slot

def dec_cachegen(p, H, T, W, B, per_channel, inline):
    assert inline, 'profile statistics are not in the vectors'
    nscales = H * W if per_channel else T
    scales = [h2f(b) for b in struct.unpack_from('<%dH' % nscales, p)]
    at = 2 * nscales
    tables = []
    for c in range(H * W):
        tables.append(geometric(2 * B + 1, p[at], p[at + 1])); at += 2
    R = (T + 3) & ~3
    x = list(struct.unpack_from('<4I', p, at)); at += 16
    L = 1 << 23
    syms = []
    for i in range(H * W * R):
        f, cum, slot = tables[i // R]
        s = x[i % 4] & 4095
        sym = slot[s]
        v = f[sym] * (x[i % 4] >> 12) + s - cum[sym]
        while v < L:
            v = (v << 8) | p[at]; at += 1
        x[i % 4] = v
        syms.append(sym)
    assert at == len(p) and x == [L] * 4, 'rANS stream not consumed exactly'
    out = [0] * (H * T * W)
    for h in range(H):
        for t in range(T):
            for d in range(W):
                c = h * W + d
                step = f32(f32(scales[c if per_channel else t]) * f32(1.0 / B))
                out[(h * T + t) * W + d] = f16bits(f32((syms[c * R + t] - B) * step))
    return out

def check(path, e):
    b = open(path, 'rb').read()
    assert b[:8] == b'KVFC\r\n\x1a\n' and struct.unpack_from('<HH', b, 8) == (1, 0)
    hl = struct.unpack_from('<I', b, 12)[0]
    kind, dtype, ck, lvl, T, L, KH, HD = struct.unpack_from('<BBBBIIII', b, 16)
    at = 36
    def string():
        nonlocal at
        n = struct.unpack_from('<H', b, at)[0]; s = b[at + 2:at + 2 + n].decode('utf-8'); at += 2 + n; return s
    cid, variant, model, tok = string(), string(), string(), string()
    plen = struct.unpack_from('<I', b, at)[0]; params = b[at + 4:at + 4 + plen]; at += 4 + plen
    ids = None
    if b[at]:
        cnt = struct.unpack_from('<I', b, at + 1)[0]; ids = list(struct.unpack_from('<%di' % cnt, b, at + 5)); at += 5 + 4 * cnt
    else: at += 1
    hidden, hsize = [], 0
    if b[at]:
        hsize, cnt = struct.unpack_from('<II', b, at + 1); hidden = list(struct.unpack_from('<%dI' % cnt, b, at + 9)); at += 9 + 4 * cnt
    else: at += 1
    assert at == 16 + hl
    h = e['header']
    assert [h['header_length'], h['entry_kind'], h['dtype'], h['codec_kind'], h['codec_level'], h['token_count'], h['layers'], h['kv_heads'], h['head_dim']] == [hl, kind, dtype, ck, lvl, T, L, KH, HD]
    assert [h['chunk_id'], h['variant'], h['model_fingerprint'], h['tokenizer_fingerprint'], h['codec_parameters_hex'], h['token_ids'], h['hidden_size'], h['hidden_state_layers']] == [cid, variant, model, tok, params.hex(), ids, hsize, hidden]
    hc = xxh64(b[:at]); assert struct.unpack_from('<Q', b, at)[0] == hc and '%016x' % hc == e['header_checksum']
    at += 8
    if ck == 3:
        assert params[0] == 1 and params[3] == 0 and struct.unpack_from('<H', params, 4)[0] == L
        kscal, vscal, klev, vlev = params[1], params[2], params[6:6 + L], params[6 + L:6 + 2 * L]
    decoded = {0: [], 1: [], 2: []}
    for i in range(2 * L + len(hidden)):
        idx, skind = struct.unpack_from('<IB', b, at); plen, psum = struct.unpack_from('<QQ', b, at + 8)
        p = b[at + 24:at + 24 + plen]
        assert idx == i and skind == (2 if i >= 2 * L else i & 1) and b[at + 5:at + 8] == b'\0\0\0'
        assert xxh64(p, hc) == psum and '%016x' % psum == e['sections'][i]['payload_checksum']
        H, W = (1, hsize) if skind == 2 else (KH, HD)
        if ck == 0: v = dec_raw(p, H, T, W)
        elif ck == 1 or (ck == 3 and skind == 2): v = dec_lz4(p, H, T, W)
        elif ck == 2: v = dec_fp8(p, H, T, W)
        else:
            layer = i // 2
            v = dec_cachegen(p, H, T, W, (klev if skind == 0 else vlev)[layer], (kscal if skind == 0 else vscal) == 1, params[3] == 0)
        decoded[skind] += v
        at += 24 + plen
    assert at == len(b) == e['file_size']
    allv = decoded[0] + decoded[1] + decoded[2]
    d = '%016x' % xxh64(struct.pack('<%dH' % len(allv), *allv))
    assert d == e['decoded_xxhash64'], (d, e['decoded_xxhash64'])

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'containers')
manifest = json.load(open(os.path.join(here, 'containers.json')))
for e in manifest['containers']:
    check(os.path.join(here, e['file']), e)
    print('ok', e['file'], e['decoded_xxhash64'])
print('all', len(manifest['containers']), 'containers check')
