/* exp(x) in float64 for AVX-512 loops, from a 16-entry table held in two
 * registers: exp(c) = 2**m * 2**(k/16) * p(r), c = (16 m + k) log(2)/16 + r,
 * |r| <= log(2)/32, p a degree-4 polynomial (relative error 2.5e-12). About
 * ten vector operations for 8 values, against some twenty for log_exp.h's
 * degree-11 exponential, which gcc vectorises for every level but which needs
 * no table. The row kernel (row_avx512.h) and the distillation runs
 * (distill_avx512.h) use it; their accuracy arguments need ~1e-9 and ~1e-6.
 *
 * Only x86 with gcc or clang includes this header (the callers' dispatch);
 * the functions carry their own `target`, so the file compiles in a
 * baseline build.
 */
#ifndef LUCID_EXP_AVX512_H
#define LUCID_EXP_AVX512_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The same level as kl_simd.h's AVX-512 loops (which define it too). */
#ifndef LUCID_AVX512_TARGET
#if defined(__clang__)
#define LUCID_AVX512_TARGET "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"
#else
#define LUCID_AVX512_TARGET "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,prefer-vector-width=512"
#endif
#endif
#define LUCID_AVX512_FN static inline __attribute__((target(LUCID_AVX512_TARGET)))

/* lucid_exp16_core's range, where its result is normal; beyond it
 * lucid_exp16_clamped gives 0 (a weight under 1e-304 of a row's largest,
 * which is 1) and +inf. */
#define LUCID_EXP16_MIN (-700.0)
#define LUCID_EXP16_MAX 700.0

/* 2**(k/16) for k = 0..15, as bits with k << 48 taken off: adding the
 * reduction's integer shifted up by 48 bits (16 m + k, m the power of two)
 * then gives the bits of 2**m * 2**(k/16) (glibc's exp uses the same trick). */
#define LUCID_EXP16_TABLE_BITS(k, value) ((int64_t)(value) - ((int64_t)(k) << 48))
static const int64_t lucid_exp16_table[16] = {
    LUCID_EXP16_TABLE_BITS(0, 0x3ff0000000000000), LUCID_EXP16_TABLE_BITS(1, 0x3ff0b5586cf9890f),
    LUCID_EXP16_TABLE_BITS(2, 0x3ff172b83c7d517b), LUCID_EXP16_TABLE_BITS(3, 0x3ff2387a6e756238),
    LUCID_EXP16_TABLE_BITS(4, 0x3ff306fe0a31b715), LUCID_EXP16_TABLE_BITS(5, 0x3ff3dea64c123422),
    LUCID_EXP16_TABLE_BITS(6, 0x3ff4bfdad5362a27), LUCID_EXP16_TABLE_BITS(7, 0x3ff5ab07dd485429),
    LUCID_EXP16_TABLE_BITS(8, 0x3ff6a09e667f3bcd), LUCID_EXP16_TABLE_BITS(9, 0x3ff7a11473eb0187),
    LUCID_EXP16_TABLE_BITS(10, 0x3ff8ace5422aa0db), LUCID_EXP16_TABLE_BITS(11, 0x3ff9c49182a3f090),
    LUCID_EXP16_TABLE_BITS(12, 0x3ffae89f995ad3ad), LUCID_EXP16_TABLE_BITS(13, 0x3ffc199bdd85529c),
    LUCID_EXP16_TABLE_BITS(14, 0x3ffd5818dcfba487), LUCID_EXP16_TABLE_BITS(15, 0x3ffea4afa2a490da),
};

typedef struct {
    __m512i table_lo, table_hi;
} lucid_exp16;

LUCID_AVX512_FN lucid_exp16 lucid_exp16_load(void)
{
    lucid_exp16 e;
    e.table_lo = _mm512_loadu_si512((const void *)lucid_exp16_table);
    e.table_hi = _mm512_loadu_si512((const void *)(lucid_exp16_table + 8));
    return e;
}

/* The reduction shared by both polynomials: returns r and sets *t to
 * 2**m * 2**(k/16), for c in [LUCID_EXP16_MIN, LUCID_EXP16_MAX] (a NaN c
 * gives a NaN r). */
LUCID_AVX512_FN __m512d lucid_exp16_reduce(const lucid_exp16 *e, __m512d c, __m512d *t)
{
    const __m512d ROUND = _mm512_set1_pd(0x1.8p52);
    __m512d shifted = _mm512_fmadd_pd(c, _mm512_set1_pd(0x1.71547652b82fep4), ROUND);
    __m512d n = _mm512_sub_pd(shifted, ROUND);
    __m512i bits = _mm512_castpd_si512(shifted);
    *t = _mm512_castsi512_pd(_mm512_add_epi64(
        _mm512_permutex2var_epi64(e->table_lo, bits, e->table_hi), _mm512_slli_epi64(bits, 48)));
    /* One rounding (fused); log(2) / 16's own rounding error times |n| <
     * 2**14 moves r by under 1e-13, a relative error of 1e-13 in the result. */
    return _mm512_fnmadd_pd(n, _mm512_set1_pd(0x1.62e42fefa39efp-5), c);
}

/* exp(c) for c in [LUCID_EXP16_MIN, LUCID_EXP16_MAX]; a NaN c gives NaN.
 * t p(r) with p(r) = 1 + r q(r), q minimax for the relative error on
 * |r| <= log(2)/32 (degree 4: 2.5e-12). */
LUCID_AVX512_FN __m512d lucid_exp16_core(const lucid_exp16 *e, __m512d c)
{
    __m512d t, r = lucid_exp16_reduce(e, c, &t);
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(0x1.555449919527bp-5), r,
                                _mm512_set1_pd(0x1.5557e423d8f00p-3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.00000003a6ab4p-1));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.fffffffb1af64p-1));
    return _mm512_fmadd_pd(_mm512_mul_pd(t, r), q, t);
}

/* exp(c) to a relative 1.6e-9 (degree 3, one multiply-add fewer), for
 * callers whose accuracy bound is far looser than that (the distillation
 * loss's 1e-6); the range and special values of lucid_exp16_core. */
LUCID_AVX512_FN __m512d lucid_exp16_core_short(const lucid_exp16 *e, __m512d c)
{
    __m512d t, r = lucid_exp16_reduce(e, c, &t);
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(0x1.55523a7e67408p-3), r,
                                _mm512_set1_pd(0x1.00021f6cfc374p-1));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.0000000d0dcddp+0));
    return _mm512_fmadd_pd(_mm512_mul_pd(t, r), q, t);
}

/* The same for any c: 0 below LUCID_EXP16_MIN (-inf included), +inf
 * above LUCID_EXP16_MAX, NaN for NaN. */
LUCID_AVX512_FN __m512d lucid_exp16_clamped(const lucid_exp16 *e, __m512d c)
{
    /* max/min return their second operand when either is NaN: c's NaN stays. */
    __m512d inside = _mm512_min_pd(_mm512_set1_pd(LUCID_EXP16_MAX),
                                   _mm512_max_pd(_mm512_set1_pd(LUCID_EXP16_MIN), c));
    __m512d v = lucid_exp16_core(e, inside);
    v = _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(c, _mm512_set1_pd(LUCID_EXP16_MIN),
                                                 _CMP_LT_OQ), _mm512_setzero_pd());
    return _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(c, _mm512_set1_pd(LUCID_EXP16_MAX),
                                                    _CMP_GT_OQ),
                              _mm512_set1_pd(INFINITY));
}

/* Two helpers of the loops that use this exponential (row_avx512.h,
 * distill_avx512.h), which go over float32 rows 8 values at a time. */

/* The lanes of the group of 8 at j that lie before n. */
LUCID_AVX512_FN __mmask8 lucid_avx512_valid8(ptrdiff_t j, ptrdiff_t n)
{
    ptrdiff_t left = n - j;
    return left >= 8 ? (__mmask8)0xff : left <= 0 ? (__mmask8)0 : (__mmask8)((1u << left) - 1u);
}

/* The loop of those loops over n values: STEP(j, 0, mask, ARG) and
 * STEP(j + 8, 1, mask, ARG) for each group of 16 (two vectors of 8, each
 * with its own accumulators, index 0 and 1), then once more for what is left
 * with lanes at or past n masked off (they load 0 and must add nothing). ARG
 * is a constant of the caller's (a mode), passed through. */
#define LUCID_AVX512_FOR_GROUPS_OF_16(STEP, ARG)                                 \
    do {                                                                         \
        ptrdiff_t j = 0;                                                         \
        for (; j + 16 <= n; j += 16) {                                           \
            STEP(j, 0, (__mmask8)0xff, ARG);                                     \
            STEP(j + 8, 1, (__mmask8)0xff, ARG);                                 \
        }                                                                        \
        if (j < n) {                                                             \
            STEP(j, 0, lucid_avx512_valid8(j, n), ARG);                          \
            STEP(j + 8, 1, lucid_avx512_valid8(j + 8, n), ARG);                  \
        }                                                                        \
    } while (0)

/* 8 float32 values at j widened to double; lanes not in `valid` give 0. */
LUCID_AVX512_FN __m512d lucid_avx512_load8_f32(const float *a, ptrdiff_t j, __mmask8 valid)
{
    return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(valid, a + j));
}

#endif /* LUCID_EXP_AVX512_H */
