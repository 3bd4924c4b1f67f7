/* AVX-512 runs of the distillation loss for float32 rows: the sums pass
 * and the student's gradient of the KL (the "difference" form), with
 * exp_avx512.h's exponential in place of distill_runs.h's degree-9 one.
 *
 * Same contracts and formulas as distill_runs.h's lucid_distill_sums_f32 and
 * lucid_distill_grad_f32 (which every other level, and the other gradient
 * forms, still run). What differs:
 * - a first look at each row's smallest value (one vminps per 16 values, the
 *   row is in cache after the maxima pass) says whether an exponential's
 *   argument can fall below the fast exponential's range (or be -inf); only
 *   such rows run the loop with clamps and selects;
 * - arguments are one fused multiply-subtract, v / T - max in one rounding;
 * - sums go to two accumulators of 8 lanes, folded in a fixed order, so a
 *   row's result depends on neither the thread count nor the other rows.
 * NaN propagates through the exponential (never selected away), so rows with
 * NaN or +inf logits give NaN as on the other levels.
 */
#ifndef LUCID_DISTILL_AVX512_H
#define LUCID_DISTILL_AVX512_H

#include <stddef.h>

#include "exp_avx512.h"

/* The smallest of n float32 values, NaNs skipped (+inf if there is none). */
LUCID_AVX512_FN double lucid_distill_min_f32(const float *a, ptrdiff_t n)
{
    __m512 low = _mm512_set1_ps(INFINITY);
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16)
        low = _mm512_min_ps(_mm512_loadu_ps(a + j), low); /* the second operand on NaN */
    if (j < n) {
        __mmask16 valid = (__mmask16)((1u << (n - j)) - 1u);
        low = _mm512_mask_min_ps(low, valid, _mm512_maskz_loadu_ps(valid, a + j), low);
    }
    return _mm512_reduce_min_ps(low);
}

/* Whether v / T - shift can fall below the fast exponential's range for some
 * value of the row (NaN comparisons count as yes). */
LUCID_AVX512_FN int lucid_distill_needs_clamp(const float *a, ptrdiff_t n, double inv_t,
                                              double shift)
{
    return !(lucid_distill_min_f32(a, n) * inv_t - shift >= LUCID_EXP16_MIN);
}

#define LUCID_DISTILL_EXP16(CLAMP, c)                                            \
    ((CLAMP) ? lucid_exp16_clamped(&e, (c)) : lucid_exp16_core_short(&e, (c)))

/* One group of 8 of the sums pass: DIVERGENCE, KEEP and CLAMP are constants
 * in each copy. A term whose probability is 0 adds 0 (lucid_distill_term). */
#define LUCID_DISTILL_SUMS_STEP(J, H, VALID, DIVERGENCE, KEEP, CLAMP)            \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d x = _mm512_fmsub_pd(lucid_avx512_load8_f32(s, J, valid), scale, shift_s); \
        __m512d y = _mm512_fmsub_pd(lucid_avx512_load8_f32(t, J, valid), scale, shift_t); \
        __m512d es = _mm512_maskz_mov_pd(valid, LUCID_DISTILL_EXP16(CLAMP, x));  \
        __m512d et = _mm512_maskz_mov_pd(valid, LUCID_DISTILL_EXP16(CLAMP, y));  \
        zs[H] = _mm512_add_pd(zs[H], es);                                        \
        zt[H] = _mm512_add_pd(zt[H], et);                                        \
        if ((DIVERGENCE) != LUCID_DISTILL_JSD) {                                 \
            __m512d p = (DIVERGENCE) == LUCID_DISTILL_KL ? et : es;              \
            __m512d d = (DIVERGENCE) == LUCID_DISTILL_KL ? _mm512_sub_pd(y, x)   \
                                                         : _mm512_sub_pd(x, y);  \
            if (CLAMP)                                                           \
                w[H] = _mm512_mask3_fmadd_pd(                                    \
                    p, d, w[H], _mm512_cmp_pd_mask(p, zero, _CMP_NEQ_UQ));       \
            else                                                                 \
                w[H] = _mm512_mask3_fmadd_pd(p, d, w[H], valid);                 \
        }                                                                        \
        if (KEEP)                                                                \
            _mm512_mask_storeu_pd(exp_s + (J), valid, es);                       \
    } while (0)

#define LUCID_DISTILL_SUMS_LOOP(DIVERGENCE, KEEP, CLAMP)                         \
    do {                                                                         \
        ptrdiff_t j = 0;                                                         \
        for (; j + 16 <= n; j += 16) {                                           \
            _mm_prefetch((const char *)(next_s + j), _MM_HINT_T1);               \
            _mm_prefetch((const char *)(next_t + j), _MM_HINT_T1);               \
            LUCID_DISTILL_SUMS_STEP(j, 0, (__mmask8)0xff, DIVERGENCE, KEEP, CLAMP); \
            LUCID_DISTILL_SUMS_STEP(j + 8, 1, (__mmask8)0xff, DIVERGENCE, KEEP, CLAMP); \
        }                                                                        \
        if (j < n) {                                                             \
            LUCID_DISTILL_SUMS_STEP(j, 0, lucid_avx512_valid8(j, n), DIVERGENCE, KEEP, CLAMP); \
            LUCID_DISTILL_SUMS_STEP(j + 8, 1, lucid_avx512_valid8(j + 8, n), DIVERGENCE, \
                                    KEEP, CLAMP);                                \
        }                                                                        \
    } while (0)

#define LUCID_DISTILL_SUMS_CLAMPS(DIVERGENCE, KEEP)                              \
    do {                                                                         \
        if (clamp)                                                               \
            LUCID_DISTILL_SUMS_LOOP(DIVERGENCE, KEEP, 1);                        \
        else                                                                     \
            LUCID_DISTILL_SUMS_LOOP(DIVERGENCE, KEEP, 0);                        \
    } while (0)

/* The sums pass of a float32 row (lucid_distill_sums_f32's contract). */
LUCID_AVX512_FN void lucid_distill_fast_sums_f32(const float *s, const float *t, ptrdiff_t n,
                                                   double inv_t, double max_s, double max_t,
                                                   const float *next_s, const float *next_t,
                                                   int divergence, double *exp_s,
                                                   lucid_row_sums *out)
{
    const lucid_exp16 e = lucid_exp16_load();
    const __m512d scale = _mm512_set1_pd(inv_t), zero = _mm512_setzero_pd();
    const __m512d shift_s = _mm512_set1_pd(max_s), shift_t = _mm512_set1_pd(max_t);
    __m512d zs[2] = {zero, zero}, zt[2] = {zero, zero}, w[2] = {zero, zero};
    int clamp = lucid_distill_needs_clamp(s, n, inv_t, max_s) ||
                lucid_distill_needs_clamp(t, n, inv_t, max_t);
    if (exp_s && divergence == LUCID_DISTILL_KL)
        LUCID_DISTILL_SUMS_CLAMPS(LUCID_DISTILL_KL, 1);
    else if (exp_s && divergence == LUCID_DISTILL_REVERSE_KL)
        LUCID_DISTILL_SUMS_CLAMPS(LUCID_DISTILL_REVERSE_KL, 1);
    else if (exp_s)
        LUCID_DISTILL_SUMS_CLAMPS(LUCID_DISTILL_JSD, 1);
    else if (divergence == LUCID_DISTILL_KL)
        LUCID_DISTILL_SUMS_CLAMPS(LUCID_DISTILL_KL, 0);
    else if (divergence == LUCID_DISTILL_REVERSE_KL)
        LUCID_DISTILL_SUMS_CLAMPS(LUCID_DISTILL_REVERSE_KL, 0);
    else
        LUCID_DISTILL_SUMS_CLAMPS(LUCID_DISTILL_JSD, 0);
    out->sum_exp_s = _mm512_reduce_add_pd(_mm512_add_pd(zs[0], zs[1]));
    out->sum_exp_t = _mm512_reduce_add_pd(_mm512_add_pd(zt[0], zt[1]));
    out->weighted = _mm512_reduce_add_pd(_mm512_add_pd(w[0], w[1]));
}

/* One group of 8 of the difference-form gradient: coef (p_own - p_other),
 * as coef_own e_own - coef p_other, where e_own is the kept exp(x_j) and
 * coef_own = coef / Z_own (KEPT), or p_own and coef_own = coef. */
#define LUCID_DISTILL_GRAD_STEP(J, VALID, KEPT, CLAMP)                           \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d p_other = LUCID_DISTILL_EXP16(CLAMP, _mm512_fmsub_pd(            \
            lucid_avx512_load8_f32(other, J, valid), scale, shift_other));       \
        __m512d e_own = (KEPT) ? _mm512_maskz_loadu_pd(valid, own_exp + (J))     \
                               : LUCID_DISTILL_EXP16(CLAMP, _mm512_fmsub_pd(     \
                                     lucid_avx512_load8_f32(own, J, valid), scale, shift_own)); \
        __m512d g = _mm512_fmsub_pd(coef_own, e_own, _mm512_mul_pd(coef, p_other)); \
        _mm256_mask_storeu_ps(out + (J), valid, _mm512_cvtpd_ps(g));             \
    } while (0)

#define LUCID_DISTILL_GRAD_LOOP(KEPT, CLAMP)                                     \
    do {                                                                         \
        ptrdiff_t j = 0;                                                         \
        for (; j + 8 <= n; j += 8)                                               \
            LUCID_DISTILL_GRAD_STEP(j, (__mmask8)0xff, KEPT, CLAMP);             \
        if (j < n)                                                               \
            LUCID_DISTILL_GRAD_STEP(j, lucid_avx512_valid8(j, n), KEPT, CLAMP);  \
    } while (0)

/* The gradient row of the difference form (the student's of the KL, the
 * teacher's of the reverse KL), lucid_distill_grad_f32's contract with
 * g->difference set: out_j = coef (p_own_j - p_other_j), p_own from own_exp
 * (the sums pass's exp(x_j)) when given. */
LUCID_AVX512_FN void lucid_distill_fast_grad_difference_f32(const float *own, const float *other,
                                                              const double *own_exp, float *out,
                                                              ptrdiff_t n,
                                                              const lucid_grad_params *params)
{
    const lucid_exp16 e = lucid_exp16_load();
    const __m512d scale = _mm512_set1_pd(params->inv_t), coef = _mm512_set1_pd(params->coef);
    /* log p_j = v_j / T - (max + log_sum), the shift rounded once (~1e-16 of it). */
    const double own_shift = params->own.max + params->own.log_sum;
    const double other_shift = params->other.max + params->other.log_sum;
    const __m512d shift_own = _mm512_set1_pd(own_shift);
    const __m512d shift_other = _mm512_set1_pd(other_shift);
    const __m512d coef_own = _mm512_set1_pd(
        own_exp ? params->coef / lucid_exp_f64(params->own.log_sum) : params->coef);
    int clamp = lucid_distill_needs_clamp(other, n, params->inv_t, other_shift) ||
                (!own_exp && lucid_distill_needs_clamp(own, n, params->inv_t, own_shift));
    if (own_exp && clamp)
        LUCID_DISTILL_GRAD_LOOP(1, 1);
    else if (own_exp)
        LUCID_DISTILL_GRAD_LOOP(1, 0);
    else if (clamp)
        LUCID_DISTILL_GRAD_LOOP(0, 1);
    else
        LUCID_DISTILL_GRAD_LOOP(0, 0);
}

#endif /* LUCID_DISTILL_AVX512_H */
