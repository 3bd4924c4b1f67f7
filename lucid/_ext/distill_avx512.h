/* AVX-512 runs of the distillation loss for float32 rows: the JSD's pass
 * and every gradient form, with exp_avx512.h's exponential and
 * log_avx512.h's logarithm in place of distill_runs.h's (degree 9, and
 * log_exp.h's).
 *
 * Same contracts and formulas as distill_runs.h's lucid_distill_jsd_f32 and
 * lucid_distill_grad_f32 (which every other level runs). What differs:
 * - a first look at each row's smallest value (one vminps per 16 values, the
 *   row is in cache after the row kernel's pass) says whether an
 *   exponential's argument can fall below the fast exponential's range (or be
 *   -inf); only such rows run the loop with clamps and selects;
 * - arguments are one fused multiply-subtract, v / T - max in one rounding;
 * - the gradients take the exps the row kernel kept as float32
 *   (lucid_grad_params.kept) instead of computing them again;
 * - sums go to two accumulators of 8 lanes, folded in a fixed order, so a
 *   row's result depends on neither the thread count nor the other rows.
 * NaN propagates through the exponential (never selected away), so rows with
 * NaN or +inf logits give NaN as on the other levels.
 */
#ifndef LUCID_DISTILL_AVX512_H
#define LUCID_DISTILL_AVX512_H

#include <stddef.h>

#include "exp_avx512.h"
#include "log_avx512.h"

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
/* The JSD's exps: its terms p (log p - log m) compare log p with the log of
 * the exp of log p, so the exp's error (1.6e-9 for the short one) would show
 * as such in the divergence of identical rows; the degree-4 one's is 2.5e-12. */
#define LUCID_DISTILL_EXP16_ACCURATE(CLAMP, c)                                   \
    ((CLAMP) ? lucid_exp16_clamped(&e, (c)) : lucid_exp16_core(&e, (c)))

/* One group of 8 of the difference-form gradient: coef (p_own - p_other),
 * both probabilities from the logits. */
#define LUCID_DISTILL_GRAD_STEP(J, VALID, CLAMP)                                 \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d p_other = LUCID_DISTILL_EXP16(CLAMP, _mm512_fmsub_pd(            \
            lucid_avx512_load8_f32(other, J, valid), scale, shift_other));       \
        __m512d p_own = LUCID_DISTILL_EXP16(CLAMP, _mm512_fmsub_pd(              \
            lucid_avx512_load8_f32(own, J, valid), scale, shift_own));           \
        __m512d g = _mm512_fmsub_pd(coef, p_own, _mm512_mul_pd(coef, p_other));   \
        _mm256_mask_storeu_ps(out + (J), valid, _mm512_cvtpd_ps(g));             \
    } while (0)

#define LUCID_DISTILL_GRAD_LOOP(CLAMP)                                           \
    do {                                                                         \
        ptrdiff_t j = 0;                                                         \
        for (; j + 8 <= n; j += 8)                                               \
            LUCID_DISTILL_GRAD_STEP(j, (__mmask8)0xff, CLAMP);                   \
        if (j < n)                                                               \
            LUCID_DISTILL_GRAD_STEP(j, lucid_avx512_valid8(j, n), CLAMP);        \
    } while (0)

/* The difference-form gradient from the exps the row kernel kept as floats
 * (lucid_grad_params.kept: exp(x_j) at out[j], overwritten here, and exp(y_j)
 * at kept_other[j]), in float32 arithmetic, 16 values a step:
 *   out_j = (coef / Z_own) e_own_j - (coef / Z_other) e_other_j.
 * Each float rounding (the two kept exps, the two factors, the product and
 * the result) is within 2**-24 of its value, so the error is below
 * 5 * 2**-24 |coef| (q_j + p_j) + 2**-24 |out_j|: unlike the double loop's
 * 2**-24 |out_j|, it does not shrink where q_j and p_j cancel. So a step
 * where |coef| q_j or |coef| p_j exceeds BIG = 1e-4 is computed in double
 * from the logits instead (as lucid_distill_fast_grad_difference_f32 does),
 * and the error stays under 6e-11 + 6e-8 |out_j|: no larger than the double
 * loop's (its exponential's 1.6e-9 relative error, where q_j and p_j cancel,
 * gives up to 3.2e-9 |coef| (q_j + p_j)), and like it scaled by a later
 * factor u (the upstream gradient), inside the loss's 1e-7 |u| floor. There
 * are at most 2 |coef| / BIG such classes per row: none or a few for the
 * usual factors (T / rows). Factors that float32 cannot hold, or whose products
 * could overflow it, take the double loop for the whole row. */
#define LUCID_DISTILL_SPLIT_BIG 1e-4

LUCID_AVX512_FN void lucid_distill_fast_grad_split_f32(const float *own, const float *other,
                                                         const float *kept_other, float *out,
                                                         ptrdiff_t n,
                                                         const lucid_grad_params *params)
{
    const lucid_exp16 e = lucid_exp16_load();
    const double z_own = lucid_exp_f64(params->own.log_sum);
    const double z_other = lucid_exp_f64(params->other.log_sum);
    const double f_own = params->coef / z_own, f_other = params->coef / z_other;
    /* Double-path arguments, as lucid_distill_fast_grad_difference_f32's. */
    const __m512d scale = _mm512_set1_pd(params->inv_t), coef = _mm512_set1_pd(params->coef);
    const __m512d shift_own = _mm512_set1_pd(params->own.max + params->own.log_sum);
    const __m512d shift_other = _mm512_set1_pd(params->other.max + params->other.log_sum);
    const __m512 factor_own = _mm512_set1_ps((float)f_own);
    const __m512 factor_other = _mm512_set1_ps((float)f_other);
    /* e_own_j > BIG Z_own / |coef| means |coef| q_j > BIG (NaN compares false,
     * and a NaN gives NaN either way). */
    const __m512 big_own = _mm512_set1_ps(
        (float)(LUCID_DISTILL_SPLIT_BIG * z_own / fabs(params->coef)));
    const __m512 big_other = _mm512_set1_ps(
        (float)(LUCID_DISTILL_SPLIT_BIG * z_other / fabs(params->coef)));
    const float *e_own = out, *e_other = kept_other;
    ptrdiff_t j = 0;
    if (!(fabs(f_own) <= 1e30 && fabs(f_other) <= 1e30)) {
        LUCID_DISTILL_GRAD_LOOP(1);
        return;
    }
    for (; j + 16 <= n; j += 16) {
        __m512 a = _mm512_loadu_ps(e_own + j), b = _mm512_loadu_ps(e_other + j);
        if (_mm512_cmp_ps_mask(a, big_own, _CMP_GT_OQ) |
            _mm512_cmp_ps_mask(b, big_other, _CMP_GT_OQ)) {
            LUCID_DISTILL_GRAD_STEP(j, (__mmask8)0xff, 1);
            LUCID_DISTILL_GRAD_STEP(j + 8, (__mmask8)0xff, 1);
        } else {
            _mm512_storeu_ps(out + j, _mm512_fmsub_ps(factor_own, a,
                                                      _mm512_mul_ps(factor_other, b)));
        }
    }
    for (; j < n; j += 8)
        LUCID_DISTILL_GRAD_STEP(j, lucid_avx512_valid8(j, n), 1);
}

/* The gradient row of the difference form (the student's of the KL, the
 * teacher's of the reverse KL) from the logits, lucid_distill_grad_f32's
 * contract with g->difference set: out_j = coef (p_own_j - p_other_j). */
LUCID_AVX512_FN void lucid_distill_fast_grad_difference_f32(const float *own, const float *other,
                                                              float *out, ptrdiff_t n,
                                                              const lucid_grad_params *params)
{
    const lucid_exp16 e = lucid_exp16_load();
    const __m512d scale = _mm512_set1_pd(params->inv_t), coef = _mm512_set1_pd(params->coef);
    /* log p_j = v_j / T - (max + log_sum), the shift rounded once (~1e-16 of it). */
    const double own_shift = params->own.max + params->own.log_sum;
    const double other_shift = params->other.max + params->other.log_sum;
    const __m512d shift_own = _mm512_set1_pd(own_shift);
    const __m512d shift_other = _mm512_set1_pd(other_shift);
    if (lucid_distill_needs_clamp(other, n, params->inv_t, other_shift) ||
        lucid_distill_needs_clamp(own, n, params->inv_t, own_shift))
        LUCID_DISTILL_GRAD_LOOP(1);
    else
        LUCID_DISTILL_GRAD_LOOP(0);
}

/* log p_j of a side for 8 values: (v / T - max) - log_sum, as the row kernel
 * shifted them (one rounding, then the log-sum: no rounding of max + log_sum,
 * which for huge logits would move every probability of the side). */
#define LUCID_DISTILL_LOG_PROB(v, shift, log_sum)                                \
    _mm512_sub_pd(_mm512_fmsub_pd((v), scale, (shift)), (log_sum))

/* Where a probability is 0 its term is 0, whatever the other factor (0 log 0
 * = 0, also against an infinite log ratio); a NaN stays NaN. */
#define LUCID_DISTILL_TERM_MASK(p) _mm512_cmp_pd_mask((p), zero, _CMP_NEQ_UQ)

/* One group of 8 of the JSD pass: p (log p - log m) and q (log q - log m). */
#define LUCID_DISTILL_JSD_STEP(J, H, VALID, CLAMP)                               \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d log_q = LUCID_DISTILL_LOG_PROB(lucid_avx512_load8_f32(s, J, valid), \
                                               max_s, log_sum_s);                \
        __m512d log_p = LUCID_DISTILL_LOG_PROB(lucid_avx512_load8_f32(t, J, valid), \
                                               max_t, log_sum_t);                \
        __m512d q = _mm512_maskz_mov_pd(valid, LUCID_DISTILL_EXP16_ACCURATE(CLAMP, log_q)); \
        __m512d p = _mm512_maskz_mov_pd(valid, LUCID_DISTILL_EXP16_ACCURATE(CLAMP, log_p)); \
        __m512d log_m = lucid_log16(&l, _mm512_fmadd_pd(beta, p, _mm512_mul_pd(rest, q))); \
        kp[H] = _mm512_mask3_fmadd_pd(p, _mm512_sub_pd(log_p, log_m), kp[H],     \
                                      LUCID_DISTILL_TERM_MASK(p));               \
        kq[H] = _mm512_mask3_fmadd_pd(q, _mm512_sub_pd(log_q, log_m), kq[H],     \
                                      LUCID_DISTILL_TERM_MASK(q));               \
    } while (0)

/* The JSD pass of a float32 row (lucid_distill_jsd_f32's contract). */
LUCID_AVX512_FN void lucid_distill_fast_jsd_f32(const float *s, const float *t, ptrdiff_t n,
                                                double inv_t, lucid_distill_side student,
                                                lucid_distill_side teacher, double beta_value,
                                                double *kl_p_m, double *kl_q_m)
{
    const lucid_exp16 e = lucid_exp16_load();
    const lucid_log16_tables l = lucid_log16_load();
    const __m512d scale = _mm512_set1_pd(inv_t), zero = _mm512_setzero_pd();
    const __m512d max_s = _mm512_set1_pd(student.max);
    const __m512d log_sum_s = _mm512_set1_pd(student.log_sum);
    const __m512d max_t = _mm512_set1_pd(teacher.max);
    const __m512d log_sum_t = _mm512_set1_pd(teacher.log_sum);
    const __m512d beta = _mm512_set1_pd(beta_value), rest = _mm512_set1_pd(1.0 - beta_value);
    __m512d kp[2] = {zero, zero}, kq[2] = {zero, zero};
    int clamp = lucid_distill_needs_clamp(s, n, inv_t, student.max + student.log_sum) ||
                lucid_distill_needs_clamp(t, n, inv_t, teacher.max + teacher.log_sum);
    if (clamp)
        LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_DISTILL_JSD_STEP, 1);
    else
        LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_DISTILL_JSD_STEP, 0);
    *kl_p_m = _mm512_reduce_add_pd(_mm512_add_pd(kp[0], kp[1]));
    *kl_q_m = _mm512_reduce_add_pd(_mm512_add_pd(kq[0], kq[1]));
}

/* One group of 8 of the weighted gradient forms (lucid_grad_params):
 * coef own_j (log own_j - log ref_j - k), ref the other side (MIX 0) or the
 * mixture weight_own own + (1 - weight_own) other (MIX 1); own_j from the
 * exp(x_j) the row kernel kept as a float32 at out[j] when KEPT. */
#define LUCID_DISTILL_WEIGHTED_STEP(J, VALID, KEPT, CLAMP, MIX)                  \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d log_own = LUCID_DISTILL_LOG_PROB(lucid_avx512_load8_f32(own, J, valid), \
                                                 max_own, log_sum_own);          \
        __m512d log_ref = LUCID_DISTILL_LOG_PROB(lucid_avx512_load8_f32(other, J, valid), \
                                                 max_other, log_sum_other);      \
        __m512d p_own = (KEPT) ? _mm512_mul_pd(lucid_avx512_load8_f32(out, J, valid), \
                                               own_scale)                        \
                               : (MIX) ? LUCID_DISTILL_EXP16_ACCURATE(CLAMP, log_own) \
                                       : LUCID_DISTILL_EXP16(CLAMP, log_own);    \
        if (MIX)                                                                 \
            log_ref = lucid_log16(&l, _mm512_fmadd_pd(                           \
                weight_own, p_own,                                               \
                _mm512_mul_pd(weight_other, LUCID_DISTILL_EXP16_ACCURATE(CLAMP, log_ref)))); \
        __m512d value = _mm512_mul_pd(p_own,                                     \
                                      _mm512_sub_pd(_mm512_sub_pd(log_own, log_ref), k)); \
        value = _mm512_maskz_mov_pd(LUCID_DISTILL_TERM_MASK(p_own), value);      \
        _mm256_mask_storeu_ps(out + (J), valid, _mm512_cvtpd_ps(_mm512_mul_pd(coef, value))); \
    } while (0)

#define LUCID_DISTILL_WEIGHTED_LOOP(KEPT, CLAMP, MIX)                            \
    do {                                                                         \
        ptrdiff_t j = 0;                                                         \
        for (; j + 8 <= n; j += 8)                                               \
            LUCID_DISTILL_WEIGHTED_STEP(j, (__mmask8)0xff, KEPT, CLAMP, MIX);    \
        if (j < n)                                                               \
            LUCID_DISTILL_WEIGHTED_STEP(j, lucid_avx512_valid8(j, n), KEPT, CLAMP, MIX); \
    } while (0)

#define LUCID_DISTILL_WEIGHTED_MIX(KEPT, CLAMP)                                  \
    do {                                                                         \
        if (mix)                                                                 \
            LUCID_DISTILL_WEIGHTED_LOOP(KEPT, CLAMP, 1);                         \
        else                                                                     \
            LUCID_DISTILL_WEIGHTED_LOOP(KEPT, CLAMP, 0);                         \
    } while (0)

/* The gradient row of the weighted forms (the student's of the reverse KL
 * and of the JSD, the teacher's of the KL and of the JSD),
 * lucid_distill_grad_f32's contract with params->difference clear. */
LUCID_AVX512_FN void lucid_distill_fast_grad_weighted_f32(const float *own, const float *other,
                                                            float *out,
                                                            ptrdiff_t n,
                                                            const lucid_grad_params *params)
{
    const lucid_exp16 e = lucid_exp16_load();
    const lucid_log16_tables l = lucid_log16_load();
    const __m512d scale = _mm512_set1_pd(params->inv_t), zero = _mm512_setzero_pd();
    const __m512d coef = _mm512_set1_pd(params->coef), k = _mm512_set1_pd(params->k);
    const __m512d max_own = _mm512_set1_pd(params->own.max);
    const __m512d log_sum_own = _mm512_set1_pd(params->own.log_sum);
    const __m512d max_other = _mm512_set1_pd(params->other.max);
    const __m512d log_sum_other = _mm512_set1_pd(params->other.log_sum);
    const __m512d own_scale = _mm512_set1_pd(1.0 / lucid_exp_f64(params->own.log_sum));
    const __m512d weight_own = _mm512_set1_pd(params->weight_own);
    const __m512d weight_other = _mm512_set1_pd(1.0 - params->weight_own);
    int mix = params->weight_own != 0.0, kept = params->kept;
    /* Only the exps taken here need the clamp decision: the mixture's other
     * side, and the own side when it was not kept. */
    int clamp = (mix && lucid_distill_needs_clamp(other, n, params->inv_t,
                                                  params->other.max + params->other.log_sum)) ||
                (!kept && lucid_distill_needs_clamp(own, n, params->inv_t,
                                                       params->own.max + params->own.log_sum));
    if (kept && clamp)
        LUCID_DISTILL_WEIGHTED_MIX(1, 1);
    else if (kept)
        LUCID_DISTILL_WEIGHTED_MIX(1, 0);
    else if (clamp)
        LUCID_DISTILL_WEIGHTED_MIX(0, 1);
    else
        LUCID_DISTILL_WEIGHTED_MIX(0, 0);
}

#endif /* LUCID_DISTILL_AVX512_H */
