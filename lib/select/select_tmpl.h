/*
 * Streaming selection passes, instantiated once per element type by
 * select.c. Parameters (macros):
 *   SEL_ELEM   float | double
 *   SEL_UINT   uint32_t | uint64_t (same width as SEL_ELEM)
 *   SEL_SFX    f32 | f64
 *   SEL_ABS    mask clearing the sign bit
 *   SEL_INF    key of +infinity (keys >= it are not finite)
 *   SEL_H1     shift of the first histogram digit
 *   SEL_SIMD   1 when the SSE2 paths apply (float on x86-64)
 * Keys travel as uint64_t outside the hot loops.
 */
#define SEL_CAT2(a, b) a##_##b
#define SEL_CAT(a, b) SEL_CAT2(a, b)
#define SEL_FN(name) SEL_CAT(name, SEL_SFX)

static inline SEL_UINT SEL_FN(key)(const SEL_ELEM *p) {
    SEL_UINT u;
    memcpy(&u, p, sizeof u);
    return u & (SEL_UINT)SEL_ABS;
}

/* Any NaN/inf among n elements? */
static inline bool SEL_FN(bad_piece)(const SEL_ELEM *p, int n) {
    SEL_UINT worst = 0;
    for (int j = 0; j < n; j++) {
        SEL_UINT k = SEL_FN(key)(p + j);
        worst = k > worst ? k : worst;
    }
    return worst >= (SEL_UINT)SEL_INF;
}

static bool SEL_FN(all_finite)(const csp_tensor *t) {
    bool bad = false;
    csp__walk w_;
    for (csp__walk_init(&w_, t, 0, t->numel); csp__walk_next(&w_);) {
        bad |= SEL_FN(bad_piece)(w_.p, w_.n);
    }
    return !bad;
}

/* Pass 1: histogram of the key bits above SEL_H1 of the candidates in
 * [a, b); sets *bad for a non-finite non-candidate (non-finite candidates
 * land in the top buckets, which the caller checks). */
static void SEL_FN(hist1)(const csp__select_src *s, int64_t a, int64_t b, int64_t *hist,
                          bool *bad) {
    const uint64_t *cur = s->cur;
    bool worst = false;
    csp__walk w_;
    for (csp__walk_init(&w_, s->t, a, b); csp__walk_next(&w_);) {
        const SEL_ELEM *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t cb = (cur[i >> 6] >> (i & 63)) & csp__lowmask(n);
        if (n == 64 && cb == ~0ULL) {
            for (int j = 0; j < 64; j += 2) {
                SEL_UINT k0 = SEL_FN(key)(p + j), k1 = SEL_FN(key)(p + j + 1);
                hist[k0 >> SEL_H1]++;
                hist[k1 >> SEL_H1]++;
            }
        } else {
            for (int j = 0; j < n; j++) {
                SEL_UINT k = SEL_FN(key)(p + j);
                if ((cb >> j) & 1)
                    hist[k >> SEL_H1]++;
                else
                    worst |= k >= (SEL_UINT)SEL_INF;
            }
        }
    }
    *bad |= worst;
}

/* Refinement: among candidates whose key >> pshift == prefix, histogram of
 * (key >> shift) & (2^(pshift - shift) - 1). */
static void SEL_FN(histr)(const csp__select_src *s, int64_t a, int64_t b, int pshift,
                          uint64_t prefix, int shift, int64_t *hist) {
    const uint64_t *cur = s->cur;
    uint64_t dmask = (1ULL << (pshift - shift)) - 1;
    csp__walk w_;
    for (csp__walk_init(&w_, s->t, a, b); csp__walk_next(&w_);) {
        const SEL_ELEM *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t cb = (cur[i >> 6] >> (i & 63)) & csp__lowmask(n);
        for (int j = 0; j < n; j++) {
            uint64_t k = SEL_FN(key)(p + j);
            if (((cb >> j) & 1) && (k >> pshift) == prefix)
                hist[(k >> shift) & dmask]++;
        }
    }
}

/* Window pass: count candidates with key > hi, append those with
 * lo <= key <= hi while the buffer has room (counting them all), flag any
 * non-finite element. */
static void SEL_FN(window)(const csp__select_src *s, int64_t a, int64_t b, uint64_t lo, uint64_t hi,
                           uint64_t *buf, int64_t cap, int64_t *nbuf, int64_t *above, bool *bad) {
    const uint64_t *cur = s->cur;
    int64_t m = *nbuf, up = 0;
    SEL_UINT worst = 0;
    const SEL_UINT klo = (SEL_UINT)lo, khi = (SEL_UINT)hi;
#if SEL_SIMD
    const __m128i vabs = _mm_set1_epi32(0x7fffffff);
    const __m128i vhi = _mm_set1_epi32((int32_t)khi);
    const __m128i vlo = _mm_set1_epi32((int32_t)klo - 1); /* keys >= 0: lo 0 gives -1 */
    const __m128i vmax = _mm_set1_epi32(0x7f7fffff);
    __m128i vbad = _mm_setzero_si128();
#endif
    csp__walk w_;
    for (csp__walk_init(&w_, s->t, a, b); csp__walk_next(&w_);) {
        const SEL_ELEM *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t cb = (cur[i >> 6] >> (i & 63)) & csp__lowmask(n);
#if SEL_SIMD
        if (n == 64) {
            uint64_t gt = 0, ge = 0;
            for (int j = 0; j < 64; j += 4) {
                __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + j)), vabs);
                vbad = _mm_or_si128(vbad, _mm_cmpgt_epi32(v, vmax));
                gt |= (uint64_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(v, vhi))) << j;
                ge |= (uint64_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(v, vlo))) << j;
            }
            gt &= cb;
            uint64_t mid = ge & cb & ~gt;
            up += csp__popcount64(gt);
            while (mid != 0) {
                int j = __builtin_ctzll(mid);
                mid &= mid - 1;
                if (m < cap)
                    buf[m] = SEL_FN(key)(p + j);
                m++;
            }
        } else
#endif
        {
            for (int j = 0; j < n; j++) {
                SEL_UINT k = SEL_FN(key)(p + j);
                worst = k > worst ? k : worst;
                if (!((cb >> j) & 1))
                    continue;
                if (k > khi) {
                    up++;
                } else if (k >= klo) {
                    if (m < cap)
                        buf[m] = k;
                    m++;
                }
            }
        }
    }
#if SEL_SIMD
    if (_mm_movemask_epi8(vbad) != 0)
        *bad = true;
#endif
    if (worst >= (SEL_UINT)SEL_INF)
        *bad = true;
    *nbuf = m;
    *above += up;
}

/* Write pass: OR into s->next the candidates in [a, b) with key > T, and
 * the first *eq_left candidates with key == T (decremented as taken). */
static void SEL_FN(write)(const csp__select_src *s, int64_t a, int64_t b, uint64_t T,
                          int64_t *eq_left) {
    const uint64_t *cur = s->cur;
    uint64_t *next = s->next;
    int64_t left = *eq_left;
    const SEL_UINT kt = (SEL_UINT)T;
#if SEL_SIMD
    const __m128i vabs = _mm_set1_epi32(0x7fffffff);
    const __m128i vt = _mm_set1_epi32((int32_t)kt);
#endif
    csp__walk w_;
    for (csp__walk_init(&w_, s->t, a, b); csp__walk_next(&w_);) {
        const SEL_ELEM *p = w_.p;
        const int64_t i = w_.i;
        const int n = w_.n;
        uint64_t cb = (cur[i >> 6] >> (i & 63)) & csp__lowmask(n);
        uint64_t gt = 0, eq = 0;
#if SEL_SIMD
        if (n == 64) {
            for (int j = 0; j < 64; j += 4) {
                __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + j)), vabs);
                gt |= (uint64_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(v, vt))) << j;
                eq |= (uint64_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(v, vt))) << j;
            }
        } else
#endif
        {
            for (int j = 0; j < n; j++) {
                SEL_UINT k = SEL_FN(key)(p + j);
                gt |= (uint64_t)(k > kt) << j;
                eq |= (uint64_t)(k == kt) << j;
            }
        }
        gt &= cb;
        eq &= cb;
        if (eq != 0) {
            int64_t c = csp__popcount64(eq);
            if (c <= left) {
                left -= c;
            } else {
                uint64_t take = 0;
                while (left > 0) {
                    take |= eq & (~eq + 1); /* lowest set bit */
                    eq &= eq - 1;
                    left--;
                }
                eq = take;
            }
        }
        next[i >> 6] |= (gt | eq) << (i & 63);
    }
    *eq_left = left;
}

/* Key of flat element f (any element, candidate or not). */
static uint64_t SEL_FN(key_at)(const csp_tensor *t, int64_t f) {
    int64_t r = f / t->cols, c = f % t->cols;
    return SEL_FN(key)((const SEL_ELEM *)t->data + r * t->row_stride + c);
}

static const sel_ops SEL_FN(ops) = {
    .keybits = (int)(sizeof(SEL_UINT) * 8 - 1),
    .h1 = SEL_H1,
    .kinf = (uint64_t)SEL_INF,
    .kabs = (uint64_t)SEL_ABS,
    .all_finite = SEL_FN(all_finite),
    .hist1 = SEL_FN(hist1),
    .histr = SEL_FN(histr),
    .window = SEL_FN(window),
    .write = SEL_FN(write),
    .key_at = SEL_FN(key_at),
};

#undef SEL_FN
#undef SEL_CAT
#undef SEL_CAT2
