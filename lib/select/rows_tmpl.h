/*
 * Row-balanced and N:M selection kernels, instantiated by rows.c once per
 * (element type, instruction set). Parameters (macros):
 *   RS_ELEM   float | double
 *   RS_KEY    uint32_t | uint64_t (same width as RS_ELEM)
 *   RS_SFX    function suffix
 *   RS_ABS    mask clearing the sign bit
 *   RS_INF    raw key of +infinity (raw keys >= it are not finite)
 *   RS_KMAX   a key larger than every biased key (below)
 *   RS_SSE2   1: SSE2 versions of the hot loops (float only)
 *   RS_AVX2   1: AVX2 versions of the row kernels (float only; implies
 *             RS_SSE2); every function then carries RS_TARGET
 *
 * Biased keys. A candidate's key is its raw key (bits of |w|) plus one, a
 * non-candidate's is 0: every candidate outranks every non-candidate, the
 * order among candidates is |w| order, and the need-th largest biased key
 * (need <= candidates) is >= 1, so the masks written from it never hold a
 * non-candidate. Biased keys of finite weights are <= RS_INF, below 2^31
 * (2^63), so SSE2's signed compares order them. The selections below run
 * only on rows found finite.
 */
#define RS_CAT2(a, b) a##_##b
#define RS_CAT(a, b) RS_CAT2(a, b)
#define RS_FN(name) RS_CAT(name, RS_SFX)

RS_TARGET static inline RS_KEY RS_FN(raw)(const RS_ELEM *p) {
    RS_KEY u;
    memcpy(&u, p, sizeof u);
    return u & (RS_KEY)RS_ABS;
}

/* Biased keys of the n elements of a row (mask bits from `base` of cur)
 * into buf; returns the number of candidates; sets *bad on a non-finite
 * element (candidate or not); g16[r] = the largest biased key among the
 * columns c with c % 16 == r (0 for none). */
RS_TARGET static int64_t RS_FN(read_row)(const RS_ELEM *row, int64_t n, const uint64_t *cur,
                                         int64_t base, RS_KEY *buf, RS_KEY *g16, bool *bad) {
    int64_t cand = 0;
    RS_KEY worst = 0;
    for (int r = 0; r < 16; r++)
        g16[r] = 0;
#if RS_SSE2 && !RS_AVX2
    const __m128i vabs = _mm_set1_epi32(0x7fffffff), one = _mm_set1_epi32(1);
    const __m128i vmax = _mm_set1_epi32(0x7f7fffff);
    __m128i vbad = _mm_setzero_si128();
    __m128i gx[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(),
                     _mm_setzero_si128()};
#endif
#if RS_AVX2
    const __m256i yabs = _mm256_set1_epi32(0x7fffffff), yone = _mm256_set1_epi32(1);
    const __m256i ymax = _mm256_set1_epi32(0x7f7fffff);
    const __m256i ybits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i ybad = _mm256_setzero_si256(), gy0 = _mm256_setzero_si256(), gy1 = gy0;
#endif
    for (int64_t c = 0; c < n; c += 64) {
        int k = n - c < 64 ? (int)(n - c) : 64;
        uint64_t cb = csp__bits_load(cur, base + c, k);
        cand += csp__popcount64(cb);
        int j = 0;
#if RS_AVX2
        /* columns c + J .. c + J + 7, J % 16 == 0 -> gy0, == 8 -> gy1 */
#define RS_READ8(J, G)                                                                             \
    do {                                                                                           \
        __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(row + c + (J))), yabs);  \
        ybad = _mm256_or_si256(ybad, _mm256_cmpgt_epi32(v, ymax));                                 \
        __m256i m = _mm256_and_si256(_mm256_set1_epi32((int32_t)((cb >> (J)) & 0xff)), ybits);     \
        m = _mm256_and_si256(_mm256_add_epi32(v, yone), _mm256_cmpeq_epi32(m, ybits));             \
        _mm256_storeu_si256((__m256i *)(buf + c + (J)), m);                                        \
        G = _mm256_max_epi32(G, m);                                                                \
    } while (0)
        if (k == 64) {
            for (int jj = 0; jj < 64; jj += 16) {
                RS_READ8(jj, gy0);
                RS_READ8(jj + 8, gy1);
            }
            continue;
        }
        for (; j + 16 <= k; j += 16) {
            RS_READ8(j, gy0);
            RS_READ8(j + 8, gy1);
        }
        if (j + 8 <= k) {
            RS_READ8(j, gy0);
            j += 8;
        }
#undef RS_READ8
#endif
#if RS_SSE2 && !RS_AVX2
        /* columns c + J .. c + J + 3 -> gx[(J / 4) % 4] */
#define RS_READ4(J, G)                                                                             \
    do {                                                                                           \
        __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)(row + c + (J))), vabs);        \
        vbad = _mm_or_si128(vbad, _mm_cmpgt_epi32(v, vmax));                                       \
        __m128i m = _mm_load_si128((const __m128i *)rs_lanes4[(cb >> (J)) & 15]);                  \
        m = _mm_and_si128(_mm_add_epi32(v, one), m);                                               \
        _mm_storeu_si128((__m128i *)(buf + c + (J)), m);                                           \
        G = rs_max_epi32(G, m);                                                                    \
    } while (0)
        for (; j + 16 <= k; j += 16) {
            RS_READ4(j, gx[0]);
            RS_READ4(j + 4, gx[1]);
            RS_READ4(j + 8, gx[2]);
            RS_READ4(j + 12, gx[3]);
        }
#undef RS_READ4
#endif
        for (; j < k; j++) {
            RS_KEY u = RS_FN(raw)(row + c + j);
            worst = u > worst ? u : worst;
            RS_KEY b = (RS_KEY)((u + 1) & (RS_KEY)(0 - ((cb >> j) & 1)));
            buf[c + j] = b;
            g16[j & 15] = b > g16[j & 15] ? b : g16[j & 15];
        }
    }
#if RS_SSE2 && !RS_AVX2
    if (_mm_movemask_epi8(vbad) != 0)
        *bad = true;
    for (int q = 0; q < 4; q++) {
        uint32_t t[4];
        _mm_storeu_si128((__m128i *)t, gx[q]);
        for (int l = 0; l < 4; l++)
            g16[4 * q + l] = t[l] > g16[4 * q + l] ? t[l] : g16[4 * q + l];
    }
#endif
#if RS_AVX2
    if (!_mm256_testz_si256(ybad, ybad))
        *bad = true;
    uint32_t t[16];
    _mm256_storeu_si256((__m256i *)t, gy0);
    _mm256_storeu_si256((__m256i *)(t + 8), gy1);
    for (int l = 0; l < 16; l++)
        g16[l] = t[l] > g16[l] ? t[l] : g16[l];
#endif
    if (worst >= (RS_KEY)RS_INF)
        *bad = true;
    return cand;
}

/* Window pass over n biased keys: copy those with lo <= key < hi to out
 * (in order; out holds n + RS_SLACK keys and is not in), count *gt keys
 * > hi and *eq keys == hi; returns how many were copied. Branch-free. */
RS_TARGET static int64_t RS_FN(window)(const RS_KEY *in, int64_t n, RS_KEY lo, RS_KEY hi, RS_KEY *out,
                             int64_t *gt, int64_t *eq) {
    int64_t m = 0, g = 0, e = 0, i = 0;
#if RS_AVX2
    /* int32 lane counters: blocks of at most 2^30 keys. Selected keys are
     * packed 4 at a time (pshufb) and stored whole: up to 3 lanes of
     * garbage past the end, inside the slack. */
    while (n - i >= 8) {
        int64_t end = i + ((n - i) & ~(int64_t)7);
        if (end - i > ((int64_t)1 << 30))
            end = i + ((int64_t)1 << 30);
        const __m256i ylo = _mm256_set1_epi32((int32_t)lo - 1);
        const __m256i yhi = _mm256_set1_epi32((int32_t)hi);
        __m256i ag = _mm256_setzero_si256(), ae = _mm256_setzero_si256();
        for (; i < end; i += 8) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(in + i));
            __m256i vg = _mm256_cmpgt_epi32(v, yhi), ve = _mm256_cmpeq_epi32(v, yhi);
            __m256i ge = _mm256_cmpgt_epi32(v, ylo);
            ag = _mm256_sub_epi32(ag, vg);
            ae = _mm256_sub_epi32(ae, ve);
            unsigned mm = (unsigned)_mm256_movemask_ps(
                _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_or_si256(vg, ve), ge)));
            __m128i l4 = _mm256_castsi256_si128(v), h4 = _mm256_extracti128_si256(v, 1);
            _mm_storeu_si128((__m128i *)(out + m),
                             _mm_shuffle_epi8(l4, _mm_load_si128((const __m128i *)rs_pack4[mm & 15])));
            m += rs_pop4[mm & 15];
            _mm_storeu_si128((__m128i *)(out + m),
                             _mm_shuffle_epi8(h4, _mm_load_si128((const __m128i *)rs_pack4[mm >> 4])));
            m += rs_pop4[mm >> 4];
        }
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, ag);
        g += (int64_t)t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
        _mm256_storeu_si256((__m256i *)t, ae);
        e += (int64_t)t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    }
#endif
#if RS_SSE2
    /* int32 lane counters: blocks of at most 2^30 keys. */
    while (n - i >= 4) {
        int64_t end = i + ((n - i) & ~(int64_t)3);
        if (end - i > ((int64_t)1 << 30))
            end = i + ((int64_t)1 << 30);
        const __m128i vlo = _mm_set1_epi32((int32_t)lo - 1), vhi = _mm_set1_epi32((int32_t)hi);
        __m128i ag = _mm_setzero_si128(), ae = _mm_setzero_si128();
        for (; i < end; i += 4) {
            __m128i v = _mm_loadu_si128((const __m128i *)(in + i));
            __m128i vg = _mm_cmpgt_epi32(v, vhi), ve = _mm_cmpeq_epi32(v, vhi);
            __m128i ge = _mm_cmpgt_epi32(v, vlo);
            ag = _mm_sub_epi32(ag, vg);
            ae = _mm_sub_epi32(ae, ve);
            unsigned mm = (unsigned)_mm_movemask_ps(
                _mm_castsi128_ps(_mm_andnot_si128(_mm_or_si128(vg, ve), ge)));
            RS_KEY x0 = in[i], x1 = in[i + 1], x2 = in[i + 2], x3 = in[i + 3];
            out[m] = x0;
            m += mm & 1;
            out[m] = x1;
            m += (mm >> 1) & 1;
            out[m] = x2;
            m += (mm >> 2) & 1;
            out[m] = x3;
            m += (mm >> 3) & 1;
        }
        int32_t t[4];
        _mm_storeu_si128((__m128i *)t, ag);
        g += (int64_t)t[0] + t[1] + t[2] + t[3];
        _mm_storeu_si128((__m128i *)t, ae);
        e += (int64_t)t[0] + t[1] + t[2] + t[3];
    }
#endif
    for (; i < n; i++) {
        RS_KEY x = in[i];
        g += x > hi;
        e += x == hi;
        out[m] = x;
        m += (x >= lo) & (x < hi);
    }
    *gt = g;
    *eq = e;
    return m;
}

/* For n <= RS_SMALL keys: *o0 = the q0-th largest and *o1 = the q1-th
 * largest (1 <= q <= n), by rank counting: the q-th largest is the least
 * key with fewer than q keys above it; *g0 (unless NULL) = keys above *o0. */
RS_TARGET static void RS_FN(small)(const RS_KEY *a, int n, int64_t q0, int64_t q1, RS_KEY *o0,
                                   RS_KEY *o1, int64_t *g0) {
    RS_KEY t0 = (RS_KEY)RS_KMAX, t1 = (RS_KEY)RS_KMAX;
#if RS_AVX2
    /* As the SSE2 version below, 8 lanes and 8 rotations; masked loads
     * give the zero padding. */
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#define RS_SMALL_CLASS(NV)                                                                         \
    do {                                                                                           \
        __m256i v[NV], r[NV][8];                                                                   \
        for (int k = 0; k < (NV); k++) {                                                           \
            __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8 * k), iota);                 \
            v[k] = _mm256_maskload_epi32((const int *)(const void *)(a + 8 * k), live);            \
            for (int j = 0; j < 8; j++)                                                            \
                r[k][j] = _mm256_permutevar8x32_epi32(v[k], rot[j]);                               \
        }                                                                                          \
        for (int x = 0; x < (NV); x++) {                                                           \
            __m256i acc = _mm256_setzero_si256();                                                  \
            for (int k = 0; k < (NV); k++)                                                         \
                for (int j = 0; j < 8; j++)                                                        \
                    acc = _mm256_add_epi32(acc, _mm256_cmpgt_epi32(r[k][j], v[x]));                \
            __m256i s0 = _mm256_cmpgt_epi32(acc, yq0), s1 = _mm256_cmpgt_epi32(acc, yq1);          \
            m0 = _mm256_min_epi32(m0, _mm256_blendv_epi8(ykmax, v[x], s0));                        \
            m1 = _mm256_min_epi32(m1, _mm256_blendv_epi8(ykmax, v[x], s1));                        \
        }                                                                                          \
        if (g0 != NULL) {                                                                          \
            __m128i h = _mm_min_epi32(_mm256_castsi256_si128(m0), _mm256_extracti128_si256(m0, 1)); \
            h = _mm_min_epi32(h, _mm_shuffle_epi32(h, 0x4e));                                      \
            h = _mm_min_epi32(h, _mm_shuffle_epi32(h, 0xb1));                                      \
            __m256i yt = _mm256_broadcastd_epi32(h), c = _mm256_setzero_si256();                   \
            for (int k = 0; k < (NV); k++)                                                         \
                c = _mm256_sub_epi32(c, _mm256_cmpgt_epi32(v[k], yt));                             \
            __m128i c4 = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));  \
            c4 = _mm_add_epi32(c4, _mm_shuffle_epi32(c4, 0x4e));                                   \
            c4 = _mm_add_epi32(c4, _mm_shuffle_epi32(c4, 0xb1));                                   \
            *g0 = _mm_cvtsi128_si32(c4);                                                           \
        }                                                                                          \
    } while (0)
    __m256i rot[8];
    for (int j = 0; j < 8; j++)
        rot[j] = _mm256_setr_epi32(j, (j + 1) & 7, (j + 2) & 7, (j + 3) & 7, (j + 4) & 7,
                                   (j + 5) & 7, (j + 6) & 7, (j + 7) & 7);
    const __m256i yq0 = _mm256_set1_epi32((int32_t)-q0), yq1 = _mm256_set1_epi32((int32_t)-q1);
    const __m256i ykmax = _mm256_set1_epi32(0x7fffffff);
    __m256i m0 = ykmax, m1 = ykmax;
    if (n <= 8)
        RS_SMALL_CLASS(1);
    else if (n <= 16)
        RS_SMALL_CLASS(2);
    else if (n <= 24)
        RS_SMALL_CLASS(3);
    else
        RS_SMALL_CLASS(4);
#undef RS_SMALL_CLASS
    __m128i h0 = _mm_min_epi32(_mm256_castsi256_si128(m0), _mm256_extracti128_si256(m0, 1));
    __m128i h1 = _mm_min_epi32(_mm256_castsi256_si128(m1), _mm256_extracti128_si256(m1, 1));
    h0 = _mm_min_epi32(h0, _mm_shuffle_epi32(h0, 0x4e));
    h0 = _mm_min_epi32(h0, _mm_shuffle_epi32(h0, 0xb1));
    h1 = _mm_min_epi32(h1, _mm_shuffle_epi32(h1, 0x4e));
    h1 = _mm_min_epi32(h1, _mm_shuffle_epi32(h1, 0xb1));
    t0 = (uint32_t)_mm_cvtsi128_si32(h0);
    t1 = (uint32_t)_mm_cvtsi128_si32(h1);
#elif RS_SSE2
    uint32_t pad[RS_SMALL] __attribute__((aligned(16)));
    memcpy(pad, a, (size_t)n * sizeof *pad);
    memset(pad + n, 0, (size_t)(RS_SMALL - n) * sizeof *pad); /* 0 never counts as above */
    /* Lanes of vector x count the keys above them over every rotation of
     * every vector; branch-free, with a fixed number of vectors per size
     * class. The zero padding takes part: its count is that of the key 0,
     * so it wins only where the answer is 0 anyway. */
#define RS_SMALL_CLASS(NV)                                                                         \
    do {                                                                                           \
        __m128i v[NV], r[NV][4];                                                                   \
        for (int k = 0; k < (NV); k++) {                                                           \
            v[k] = _mm_load_si128((const __m128i *)(pad + 4 * k));                                 \
            r[k][0] = v[k];                                                                        \
            r[k][1] = _mm_shuffle_epi32(v[k], 0x39);                                               \
            r[k][2] = _mm_shuffle_epi32(v[k], 0x4e);                                               \
            r[k][3] = _mm_shuffle_epi32(v[k], 0x93);                                               \
        }                                                                                          \
        for (int x = 0; x < (NV); x++) {                                                           \
            __m128i acc = _mm_setzero_si128();                                                     \
            for (int k = 0; k < (NV); k++)                                                         \
                for (int j = 0; j < 4; j++)                                                        \
                    acc = _mm_add_epi32(acc, _mm_cmpgt_epi32(r[k][j], v[x]));                      \
            /* acc = -(keys above); keep v[x] where above < q, i.e. acc > -q */                   \
            __m128i s0 = _mm_cmpgt_epi32(acc, vq0), s1 = _mm_cmpgt_epi32(acc, vq1);                \
            __m128i c0 = _mm_or_si128(_mm_and_si128(s0, v[x]), _mm_andnot_si128(s0, vkmax));       \
            __m128i c1 = _mm_or_si128(_mm_and_si128(s1, v[x]), _mm_andnot_si128(s1, vkmax));       \
            m0 = rs_min_epi32(m0, c0);                                                             \
            m1 = rs_min_epi32(m1, c1);                                                             \
        }                                                                                          \
    } while (0)
    const __m128i vq0 = _mm_set1_epi32((int32_t)-q0), vq1 = _mm_set1_epi32((int32_t)-q1);
    const __m128i vkmax = _mm_set1_epi32(0x7fffffff);
    __m128i m0 = vkmax, m1 = vkmax;
    if (n <= 8)
        RS_SMALL_CLASS(2);
    else if (n <= 16)
        RS_SMALL_CLASS(4);
    else if (n <= 24)
        RS_SMALL_CLASS(6);
    else
        RS_SMALL_CLASS(8);
    m0 = rs_min_epi32(m0, _mm_shuffle_epi32(m0, 0x4e));
    m0 = rs_min_epi32(m0, _mm_shuffle_epi32(m0, 0xb1));
    m1 = rs_min_epi32(m1, _mm_shuffle_epi32(m1, 0x4e));
    m1 = rs_min_epi32(m1, _mm_shuffle_epi32(m1, 0xb1));
    t0 = (uint32_t)_mm_cvtsi128_si32(m0);
    t1 = (uint32_t)_mm_cvtsi128_si32(m1);
#undef RS_SMALL_CLASS
#else
    for (int i = 0; i < n; i++) {
        int64_t above = 0;
        RS_KEY x = a[i];
        for (int j = 0; j < n; j++)
            above += a[j] > x;
        t0 = (above < q0 && x < t0) ? x : t0;
        t1 = (above < q1 && x < t1) ? x : t1;
    }
#endif
#if !RS_AVX2
    if (g0 != NULL) {
        int64_t g = 0;
        for (int i = 0; i < n; i++)
            g += a[i] > t0;
        *g0 = g;
    }
#endif
    *o0 = t0;
    *o1 = t1;
}

/* The need-th largest (1 <= need <= n) of n biased keys; *gt receives how
 * many are larger. `in` is not written; t1, t2 hold n + RS_SLACK keys each. Windows
 * from a sample of the current set narrow it (rs_plan); a window that
 * misses costs one more pass; every pass drops at least one key, so this
 * ends whatever the data. */
RS_TARGET static RS_KEY RS_FN(kth)(const RS_KEY *in, int64_t n, int64_t need, RS_KEY *t1,
                                   RS_KEY *t2, rs_plan *cache, RS_KEY hint, int64_t *gt) {
    int64_t above = 0;
    RS_KEY *out = t1, *spare = t2;
    for (bool first = true;; first = false) {
        if (n <= RS_SMALL) {
            RS_KEY T, unused;
            int64_t g;
            RS_FN(small)(in, (int)n, need, need, &T, &unused, &g);
            *gt = above + g;
            return T;
        }
        RS_KEY lo, hi;
        if (first && hint > 0) { /* a lower bound of the target from the caller */
            lo = hint;
            hi = (RS_KEY)RS_KMAX;
        } else {
            rs_plan pl;
            if (cache->n == n && cache->need == need) {
                pl = *cache;
            } else {
                rs_plan_level(&pl, n, need);
                *cache = pl;
            }
            RS_KEY smp[RS_SMALL], slo, shi;
            uint64_t pos = pl.step / 2;
            for (int i = 0; i < pl.S; i++, pos += pl.step)
                smp[i] = in[pos >> 16];
            RS_FN(small)(smp, pl.S, pl.S - (pl.ilo < 0 ? 0 : pl.ilo),
                         pl.S - (pl.ihi >= pl.S ? pl.S - 1 : pl.ihi), &slo, &shi, NULL);
            lo = pl.ilo < 0 || slo < 1 ? 1 : slo;
            hi = pl.ihi >= pl.S ? (RS_KEY)RS_KMAX : shi;
            if (lo > hi)
                lo = hi;
        }
        int64_t A, E;
        int64_t m = RS_FN(window)(in, n, lo, hi, out, &A, &E);
        if (m == n) {
            /* Only with no upper bound: then lo is a key of the set (from
             * the sample or the hint) and its minimum; pivot on it (an
             * empty window), which drops its copies whichever way the
             * target lies. */
            hi = lo;
            m = RS_FN(window)(in, n, lo, hi, out, &A, &E);
        }
        if (need <= A) { /* above the window */
            int64_t u1, u2;
            m = RS_FN(window)(in, n, hi + 1, (RS_KEY)RS_KMAX, out, &u1, &u2);
        } else if (need <= A + E) {
            *gt = above + A;
            return hi;
        } else if (need <= A + E + m) {
            need -= A + E;
            above += A + E;
        } else { /* below the window */
            need -= A + E + m;
            above += A + E + m;
            int64_t u1, u2;
            m = RS_FN(window)(in, n, 0, lo, out, &u1, &u2);
        }
        n = m;
        in = out;
        out = spare;
        spare = (RS_KEY *)in;
    }
}

/* Mask bits of a row from its biased keys: keys > T, and the first eq_take
 * keys == T in column order, ORed into next from bit `base`. */
RS_TARGET static void RS_FN(write_row)(const RS_KEY *buf, int64_t n, RS_KEY T, int64_t eq_take,
                             uint64_t *next, int64_t base) {
#if RS_SSE2
    const __m128i vt = _mm_set1_epi32((int32_t)T);
#endif
#if RS_AVX2
    const __m256i yt = _mm256_set1_epi32((int32_t)T);
#endif
    for (int64_t c = 0; c < n; c += 64) {
        int k = n - c < 64 ? (int)(n - c) : 64;
        uint64_t gt = 0, eq = 0;
        int j = 0;
#if RS_AVX2
#define RS_CMP8(J)                                                                                 \
    do {                                                                                           \
        __m256i v = _mm256_loadu_si256((const __m256i *)(buf + c + (J)));                          \
        gt |= (uint64_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(v, yt))) << (J); \
        eq |= (uint64_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, yt))) << (J); \
    } while (0)
        if (k == 64) {
            for (int jj = 0; jj < 64; jj += 8)
                RS_CMP8(jj);
            j = 64;
        }
        for (; j + 8 <= k; j += 8)
            RS_CMP8(j);
#undef RS_CMP8
#endif
#if RS_SSE2
#define RS_CMP4(J)                                                                                 \
    do {                                                                                           \
        __m128i v = _mm_loadu_si128((const __m128i *)(buf + c + (J)));                             \
        gt |= (uint64_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(v, vt))) << (J);          \
        eq |= (uint64_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v, vt))) << (J);          \
    } while (0)
        if (k == 64 && j == 0) {
            for (int jj = 0; jj < 64; jj += 4)
                RS_CMP4(jj);
            j = 64;
        }
        for (; j + 4 <= k; j += 4)
            RS_CMP4(j);
#undef RS_CMP4
#endif
        for (; j < k; j++) {
            gt |= (uint64_t)(buf[c + j] > T) << j;
            eq |= (uint64_t)(buf[c + j] == T) << j;
        }
        csp__bits_or(next, base + c, k, gt | rs_take_low(&eq_take, eq));
    }
}

/* Rows [r0, r1) of a row-balanced selection. Returns false on a
 * non-finite element. */
RS_TARGET static bool RS_FN(rows)(const csp__select_src *s, int64_t r0, int64_t r1, int64_t keep_row,
                        void *scratch) {
    const csp_tensor *t = s->t;
    RS_KEY *buf = scratch, *t1 = buf + t->cols + RS_SLACK, *t2 = t1 + t->cols + RS_SLACK;
    rs_plan cache = {-1, -1, 0, 0, 0, 0};
    bool bad = false;
    for (int64_t r = r0; r < r1; r++) {
        const RS_ELEM *row = (const RS_ELEM *)t->data + r * t->row_stride;
        int64_t base = r * t->cols;
        RS_KEY g16[16];
        int64_t cand = RS_FN(read_row)(row, t->cols, s->cur, base, buf, g16, &bad);
        if (bad)
            return false;
        int64_t need = keep_row < cand ? keep_row : cand;
        if (need <= 0)
            continue;
        if (need == cand) {
            csp__mask_or_range(s->next, s->cur, base, t->cols);
            continue;
        }
        /* Few to keep: the need-th largest of the maxima of 8 (16) column
         * classes is a lower bound of the target (need of them, from
         * different classes, are at least as large), a tighter window than
         * a sample's, and one that cannot miss. */
        RS_KEY hint = 0, unused;
        if (need <= 8 && t->cols >= 48) {
            for (int l = 0; l < 8; l++)
                g16[l] = g16[l] > g16[l + 8] ? g16[l] : g16[l + 8];
            RS_FN(small)(g16, 8, need, need, &hint, &unused, NULL);
        } else if (need <= 16 && t->cols >= 96) {
            RS_FN(small)(g16, 16, need, need, &hint, &unused, NULL);
        }
        int64_t g;
        RS_KEY T = RS_FN(kth)(buf, t->cols, need, t1, t2, &cache, hint, &g);
        RS_FN(write_row)(buf, t->cols, T, need - g, s->next, base);
    }
    return true;
}

/* ---- N:M ------------------------------------------------------------------- */

/* One group of m (<= 64) weights at p with candidate bits cb: the keep
 * highest-ranked candidates. Sets *bad on a non-finite weight. */
RS_TARGET static uint64_t RS_FN(nm_group)(const RS_ELEM *p, int m, uint64_t cb, int keep, bool *bad) {
    RS_KEY k[64], t1[64 + RS_SLACK], t2[64 + RS_SLACK];
    RS_KEY worst = 0;
    if (m > 64) /* never (select.h); tells the compiler k[] is large enough */
        m = 64;
    for (int j = 0; j < m; j++) {
        RS_KEY u = RS_FN(raw)(p + j);
        worst = u > worst ? u : worst;
        k[j] = (RS_KEY)((u + 1) & (RS_KEY)(0 - ((cb >> j) & 1)));
    }
    if (worst >= (RS_KEY)RS_INF)
        *bad = true;
    int cand = csp__popcount64(cb);
    if (cand <= keep)
        return cb;
    if (keep <= 0)
        return 0;
    if (m <= 8) {
        /* Rank counting over the pairs: ranked above j are the larger keys
         * and the equal ones before j. */
        int rank[8];
        for (int j = 0; j < m; j++)
            rank[j] = 0;
        for (int j = 1; j < m; j++)
            for (int q = 0; q < j; q++) {
                int ge = k[q] >= k[j];
                rank[j] += ge;
                rank[q] += 1 - ge;
            }
        uint64_t out = 0;
        for (int j = 0; j < m; j++)
            out |= (uint64_t)(rank[j] < keep) << j;
        return out & cb;
    }
    rs_plan cache = {-1, -1, 0, 0, 0, 0};
    int64_t g;
    RS_KEY T = RS_FN(kth)(k, m, keep, t1, t2, &cache, 0, &g);
    uint64_t gt = 0, eq = 0;
    for (int j = 0; j < m; j++) {
        gt |= (uint64_t)(k[j] > T) << j;
        eq |= (uint64_t)(k[j] == T) << j;
    }
    int64_t take = keep - g;
    return gt | rs_take_low(&take, eq);
}

#if RS_SSE2
/* Four groups of 4 (16 floats at p, candidate bits cb): ranks counted in
 * registers across the transposed groups, ties to the lower index. */
RS_TARGET static inline uint32_t RS_FN(nm4x4)(const float *p, uint32_t cb, __m128i vkeep, __m128i *vbad) {
    const __m128i vabs = _mm_set1_epi32(0x7fffffff), one = _mm_set1_epi32(1);
    const __m128i vmax = _mm_set1_epi32(0x7f7fffff), zero = _mm_setzero_si128();
    __m128i k[4];
    for (int g = 0; g < 4; g++) {
        __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + 4 * g)), vabs);
        *vbad = _mm_or_si128(*vbad, _mm_cmpgt_epi32(v, vmax));
        k[g] = _mm_and_si128(_mm_add_epi32(v, one),
                             _mm_load_si128((const __m128i *)rs_lanes4[(cb >> (4 * g)) & 15]));
    }
    /* P[j] lane g = position j of group g */
    __m128i a0 = _mm_unpacklo_epi32(k[0], k[1]), a1 = _mm_unpacklo_epi32(k[2], k[3]);
    __m128i a2 = _mm_unpackhi_epi32(k[0], k[1]), a3 = _mm_unpackhi_epi32(k[2], k[3]);
    __m128i P[4] = {_mm_unpacklo_epi64(a0, a1), _mm_unpackhi_epi64(a0, a1),
                    _mm_unpacklo_epi64(a2, a3), _mm_unpackhi_epi64(a2, a3)};
    /* rank[j] = #{q < j: P[q] >= P[j]} + #{q > j: P[q] > P[j]} */
    __m128i rank[4];
    for (int j = 0; j < 4; j++)
        rank[j] = _mm_set1_epi32(j);
    RS_UNROLL(4)
    for (int j = 1; j < 4; j++)
        RS_UNROLL(4)
        for (int q = 0; q < j; q++) {
            __m128i jw = _mm_cmpgt_epi32(P[j], P[q]); /* j beats q */
            rank[j] = _mm_add_epi32(rank[j], jw);
            rank[q] = _mm_sub_epi32(rank[q], jw);
        }
    uint32_t out = 0;
    for (int j = 0; j < 4; j++) {
        __m128i kept = _mm_and_si128(_mm_cmpgt_epi32(vkeep, rank[j]), _mm_cmpgt_epi32(P[j], zero));
        out |= (uint32_t)rs_spread4[_mm_movemask_ps(_mm_castsi128_ps(kept))] << j;
    }
    return out;
}

/* Four groups of 8 (32 floats at p). */
RS_TARGET static inline uint32_t RS_FN(nm8x4)(const float *p, uint32_t cb, __m128i vkeep, __m128i *vbad) {
    const __m128i vabs = _mm_set1_epi32(0x7fffffff), one = _mm_set1_epi32(1);
    const __m128i vmax = _mm_set1_epi32(0x7f7fffff), zero = _mm_setzero_si128();
    __m128i k[8]; /* k[2g + h]: half h of group g */
    for (int v8 = 0; v8 < 8; v8++) {
        __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + 4 * v8)), vabs);
        *vbad = _mm_or_si128(*vbad, _mm_cmpgt_epi32(v, vmax));
        k[v8] = _mm_and_si128(_mm_add_epi32(v, one),
                              _mm_load_si128((const __m128i *)rs_lanes4[(cb >> (4 * v8)) & 15]));
    }
    __m128i P[8];
    for (int h = 0; h < 2; h++) {
        __m128i a0 = _mm_unpacklo_epi32(k[h], k[2 + h]), a1 = _mm_unpacklo_epi32(k[4 + h], k[6 + h]);
        __m128i a2 = _mm_unpackhi_epi32(k[h], k[2 + h]), a3 = _mm_unpackhi_epi32(k[4 + h], k[6 + h]);
        P[4 * h] = _mm_unpacklo_epi64(a0, a1);
        P[4 * h + 1] = _mm_unpackhi_epi64(a0, a1);
        P[4 * h + 2] = _mm_unpacklo_epi64(a2, a3);
        P[4 * h + 3] = _mm_unpackhi_epi64(a2, a3);
    }
    __m128i rank[8];
    for (int j = 0; j < 8; j++)
        rank[j] = _mm_set1_epi32(j);
    RS_UNROLL(8)
    for (int j = 1; j < 8; j++)
        RS_UNROLL(8)
        for (int q = 0; q < j; q++) {
            __m128i jw = _mm_cmpgt_epi32(P[j], P[q]);
            rank[j] = _mm_add_epi32(rank[j], jw);
            rank[q] = _mm_sub_epi32(rank[q], jw);
        }
    uint32_t out = 0;
    for (int j = 0; j < 8; j++) {
        __m128i kept = _mm_and_si128(_mm_cmpgt_epi32(vkeep, rank[j]), _mm_cmpgt_epi32(P[j], zero));
        out |= rs_spread8[_mm_movemask_ps(_mm_castsi128_ps(kept))] << j;
    }
    return out;
}
#endif

/* N:M over the flat range [a, b) of whole groups where m divides 64: walk
 * pieces (one row, one mask word) hold whole groups. */
RS_TARGET static bool RS_FN(nm_walk)(const csp__select_src *s, int64_t a, int64_t b, int m, int keep) {
    bool bad = false;
#if RS_SSE2
    const __m128i vkeep = _mm_set1_epi32(keep);
    __m128i vbad = _mm_setzero_si128();
#endif
    csp__walk w_;
    for (csp__walk_init(&w_, s->t, a, b); csp__walk_next(&w_);) {
        const RS_ELEM *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t cb = (s->cur[i >> 6] >> (i & 63)) & csp__lowmask(n);
        uint64_t out = 0;
        int j = 0;
#if RS_SSE2
        if (m == 4)
            for (; j + 16 <= n; j += 16)
                out |= (uint64_t)RS_FN(nm4x4)(p + j, (uint32_t)(cb >> j), vkeep, &vbad) << j;
        else if (m == 8)
            for (; j + 32 <= n; j += 32)
                out |= (uint64_t)RS_FN(nm8x4)(p + j, (uint32_t)(cb >> j), vkeep, &vbad) << j;
#endif
        for (; j < n; j += m)
            out |= RS_FN(nm_group)(p + j, m, (cb >> j) & csp__lowmask(m), keep, &bad) << j;
        s->next[i >> 6] |= out << (i & 63);
    }
#if RS_SSE2
    if (_mm_movemask_epi8(vbad) != 0)
        bad = true;
#endif
    return !bad;
}

/* N:M over groups [g0, g1) (flat group index; any m): groups may straddle
 * mask words. */
RS_TARGET static bool RS_FN(nm_groups)(const csp__select_src *s, int64_t g0, int64_t g1, int m, int keep) {
    const csp_tensor *t = s->t;
    bool bad = false;
    for (int64_t g = g0; g < g1; g++) {
        int64_t f = g * m;
        int64_t r = f / t->cols, c = f % t->cols;
        const RS_ELEM *p = (const RS_ELEM *)t->data + r * t->row_stride + c;
        uint64_t cb = csp__bits_load(s->cur, f, m);
        csp__bits_or(s->next, f, m, RS_FN(nm_group)(p, m, cb, keep, &bad));
    }
    return !bad;
}

static const rs_ops RS_FN(rs_ops) = {
    .key_bytes = sizeof(RS_KEY),
    .rows = RS_FN(rows),
    .nm_walk = RS_FN(nm_walk),
    .nm_groups = RS_FN(nm_groups),
};

#undef RS_FN
#undef RS_CAT
#undef RS_CAT2
