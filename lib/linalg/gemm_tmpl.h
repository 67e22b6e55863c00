/*
 * The deterministic GEMM kernel, instantiated by gemm.c once per (element
 * type, instruction set). Parameters (macros):
 *   GM_T       float | double
 *   GM_VT      the vector type (GM_T itself for the portable version)
 *   GM_W       lanes per vector (1 for the portable version)
 *   GM_MR      rows of the register tile
 *   GM_LOAD(p), GM_STORE(p, v), GM_BCAST(p), GM_ZERO(), GM_FMA(a, b, c)
 *   GM_FMAS    the scalar fused multiply-add (fmaf | fma)
 *   GM_TARGET  the target attribute (or nothing)
 *   GM_SFX     function suffix
 *   GM_MASK_T, GM_MASK(r), GM_LOADM(p, mk), GM_STOREM(p, mk, v)  optional:
 *              a mask of the first r < GM_W lanes and masked load / store
 *              (lanes outside the mask neither read nor written); with them
 *              the last n % GM_W columns run as one masked vector instead of
 *              one scalar chain per element
 *
 * Every output element is c = fma(A(i,k-1), B(k-1,j), ... fma(A(i,0), B(0,j),
 * c0)): the terms in order of p, each one rounded once. That is the order
 * of every path below (tile, narrow tile, single row, scalar tail), so the
 * result does not depend on the tiling, the instruction set, the column or
 * row range a caller (a thread) asks for, or the thread count.
 */
#define GM_CAT2(a, b) a##_##b
#define GM_CAT(a, b) GM_CAT2(a, b)
#define GM_FN(name) GM_CAT(name, GM_SFX)
#define GM_UNROLL _Pragma("GCC unroll 16")

/* One tile: rows i .. i+GM_MR-1, columns j .. j+NV*GM_W-1. */
#define GM_TILE(NV)                                                                         \
    do {                                                                                    \
        GM_VT c[GM_MR][NV];                                                                 \
        GM_UNROLL for (int r = 0; r < GM_MR; r++)                                           \
            GM_UNROLL for (int v = 0; v < NV; v++)                                          \
                c[r][v] = acc ? GM_LOAD(C + (i + r) * ldc + j + v * GM_W) : GM_ZERO();      \
        for (int64_t p = 0; p < k; p++) {                                                   \
            const GM_T *bp = B + p * ldb + j;                                               \
            GM_VT b[NV];                                                                    \
            GM_UNROLL for (int v = 0; v < NV; v++)                                          \
                b[v] = GM_LOAD(bp + v * GM_W);                                              \
            const GM_T *ap = A + i * rsa + p * csa;                                         \
            GM_UNROLL for (int r = 0; r < GM_MR; r++) {                                     \
                GM_VT a = GM_BCAST(ap + r * rsa);                                           \
                GM_UNROLL for (int v = 0; v < NV; v++)                                      \
                    c[r][v] = GM_FMA(a, b[v], c[r][v]);                                     \
            }                                                                               \
        }                                                                                   \
        GM_UNROLL for (int r = 0; r < GM_MR; r++)                                           \
            GM_UNROLL for (int v = 0; v < NV; v++)                                          \
                GM_STORE(C + (i + r) * ldc + j + v * GM_W, c[r][v]);                        \
    } while (0)

#ifdef GM_LOADM
/* The tile's last, partial vector of columns: rows i .. i+GM_MR-1, columns
 * j .. n-1 (n - j < GM_W) through the lane mask mk. */
#define GM_TILE_MASKED(mk)                                                                  \
    do {                                                                                    \
        GM_VT c[GM_MR];                                                                     \
        GM_UNROLL for (int r = 0; r < GM_MR; r++)                                           \
            c[r] = acc ? GM_LOADM(C + (i + r) * ldc + j, mk) : GM_ZERO();                   \
        for (int64_t p = 0; p < k; p++) {                                                   \
            GM_VT b = GM_LOADM(B + p * ldb + j, mk);                                        \
            const GM_T *ap = A + i * rsa + p * csa;                                         \
            GM_UNROLL for (int r = 0; r < GM_MR; r++)                                       \
                c[r] = GM_FMA(GM_BCAST(ap + r * rsa), b, c[r]);                             \
        }                                                                                   \
        GM_UNROLL for (int r = 0; r < GM_MR; r++)                                           \
            GM_STOREM(C + (i + r) * ldc + j, mk, c[r]);                                     \
    } while (0)
#endif

/* A block of C: the tiles, then the rows left over one at a time in
 * register strips (the same per-element chain). */
GM_TARGET static void GM_FN(block)(int64_t m, int64_t n, int64_t k, const GM_T *restrict A,
                                   int64_t rsa, int64_t csa, const GM_T *restrict B,
                                   int64_t ldb, GM_T *restrict C, int64_t ldc, bool acc) {
    int64_t i = 0;
    for (; i + GM_MR <= m; i += GM_MR) {
        int64_t j = 0;
        for (; j + 2 * GM_W <= n; j += 2 * GM_W)
            GM_TILE(2);
        for (; j + GM_W <= n; j += GM_W)
            GM_TILE(1);
#ifdef GM_LOADM
        if (j < n) {
            GM_MASK_T mk = GM_MASK(n - j);
            GM_TILE_MASKED(mk);
            j = n;
        }
#endif
        for (; j < n; j++)
            for (int r = 0; r < GM_MR; r++) {
                GM_T s = acc ? C[(i + r) * ldc + j] : (GM_T)0;
                for (int64_t p = 0; p < k; p++)
                    s = GM_FMAS(A[(i + r) * rsa + p * csa], B[p * ldb + j], s);
                C[(i + r) * ldc + j] = s;
            }
    }
    for (; i < m; i++) {
        GM_T *c = C + i * ldc;
        const GM_T *a = A + i * rsa;
        int64_t j = 0;
        /* Register strips of 4 vectors: each element's chain over p stays in
         * a register (B read down a strip of columns). */
        for (; j + 4 * GM_W <= n; j += 4 * GM_W) {
            GM_VT cv[4];
            GM_UNROLL for (int v = 0; v < 4; v++)
                cv[v] = acc ? GM_LOAD(c + j + v * GM_W) : GM_ZERO();
            for (int64_t p = 0; p < k; p++) {
                GM_VT av = GM_BCAST(a + p * csa);
                const GM_T *bp = B + p * ldb + j;
                GM_UNROLL for (int v = 0; v < 4; v++)
                    cv[v] = GM_FMA(av, GM_LOAD(bp + v * GM_W), cv[v]);
            }
            GM_UNROLL for (int v = 0; v < 4; v++)
                GM_STORE(c + j + v * GM_W, cv[v]);
        }
        for (; j + GM_W <= n; j += GM_W) {
            GM_VT cv = acc ? GM_LOAD(c + j) : GM_ZERO();
            for (int64_t p = 0; p < k; p++)
                cv = GM_FMA(GM_BCAST(a + p * csa), GM_LOAD(B + p * ldb + j), cv);
            GM_STORE(c + j, cv);
        }
#ifdef GM_LOADM
        if (j < n) {
            GM_MASK_T mk = GM_MASK(n - j);
            GM_VT cv = acc ? GM_LOADM(c + j, mk) : GM_ZERO();
            for (int64_t p = 0; p < k; p++)
                cv = GM_FMA(GM_BCAST(a + p * csa), GM_LOADM(B + p * ldb + j, mk), cv);
            GM_STOREM(c + j, mk, cv);
            j = n;
        }
#endif
        for (; j < n; j++) {
            GM_T sv = acc ? c[j] : (GM_T)0;
            for (int64_t p = 0; p < k; p++)
                sv = GM_FMAS(a[p * csa], B[p * ldb + j], sv);
            c[j] = sv;
        }
    }
}

/* Cache blocking: column panels of GM_NB and inner blocks of GM_KC terms
 * (a chain continued from the value stored after the previous block is the
 * same chain: the intermediate is stored in GM_T, as the tile holds it). */
#define GM_NB 256
#define GM_KC 256
GM_TARGET static void GM_FN(gemm)(int64_t m, int64_t n, int64_t k, const GM_T *restrict A,
                                  int64_t rsa, int64_t csa, const GM_T *restrict B, int64_t ldb,
                                  GM_T *restrict C, int64_t ldc, bool acc) {
    if (m < GM_MR) { /* single rows in register strips: no blocking needed */
        GM_FN(block)(m, n, k, A, rsa, csa, B, ldb, C, ldc, acc);
        return;
    }
    for (int64_t j0 = 0; j0 < n; j0 += GM_NB) {
        int64_t nb = n - j0 < GM_NB ? n - j0 : GM_NB;
        int64_t p0 = 0;
        do {
            int64_t kc = k - p0 < GM_KC ? k - p0 : GM_KC;
            GM_FN(block)(m, nb, kc, A + p0 * csa, rsa, csa, B + p0 * ldb + j0, ldb, C + j0, ldc,
                         acc || p0 > 0);
            p0 += kc;
        } while (p0 < k);
    }
}
#undef GM_NB
#undef GM_KC

#undef GM_TILE
#undef GM_TILE_MASKED
#undef GM_FN
#undef GM_UNROLL
#undef GM_CAT
#undef GM_CAT2
