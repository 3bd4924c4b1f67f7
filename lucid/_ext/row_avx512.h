/* The row kernel's AVX-512 block loops for contiguous float32 rows, the
 * common case of an evaluation job (row_kernel.h gives the method; these
 * loops compute the same sums as row_blocks.h's, faster).
 *
 * Why separate loops. The generic loops widen each block into a double
 * buffer, track the argmax lane by lane and take a degree-7 exponential with
 * selects for every special value: about 60 vector operations per 8 pairs of
 * elements, which made the kernel arithmetic-bound at three times the speed
 * of memory. Here:
 * - the maximum of a block is found on the float32 values (one vmaxps per 16
 *   elements); the argmax is looked for only in a block that raised it;
 * - the block's minimum (one vminps) says whether any exponential's argument
 *   can fall below LUCID_ROW_FAST_EXP_MIN or is -inf: only then does a block
 *   run the variant with the clamps and selects;
 * - the exponential is exp_avx512.h's table-driven one (relative error
 *   2.5e-12, the generic narrow exponential's is 6e-11; the accuracy
 *   argument of row_kernel.h needs ~1e-9), about ten operations for 8.
 * A NaN in either row still reaches the sums (NaN propagates through the
 * exponential's arithmetic; the comparisons are written so that it is never
 * selected away), and +inf logits give inf - inf = NaN as in the generic
 * loops, so such rows go to the careful path as before.
 *
 * Every sum is accumulated in two vectors of 8 lanes in column order and
 * folded in a fixed order: a row's result depends on neither the thread count
 * nor the other rows of a call.
 */
#ifndef LUCID_ROW_AVX512_H
#define LUCID_ROW_AVX512_H

#include <stddef.h>
#include <stdint.h>

#include "exp_avx512.h"

#define LUCID_ROW_AVX512_FN LUCID_AVX512_FN
/* The block loops and their helpers, always inlined into the AVX-512 block
 * function (row_kernel.h's lucid_row_fast_block): with the pair loop's copies,
 * gcc's size limits stopped inlining them, and the out-of-line loops made
 * three students 10-20 % slower. */
#define LUCID_ROW_AVX512_INLINE LUCID_AVX512_FN __attribute__((always_inline))
/* Arguments at or above this take the exponential without a clamp; see
 * exp_avx512.h. Log-probabilities above LUCID_ROW_FAST_EXP_MAX take the
 * careful path. */
#define LUCID_ROW_FAST_EXP_MIN LUCID_EXP16_MIN
#define LUCID_ROW_FAST_EXP_MAX LUCID_EXP16_MAX

/* Largest and smallest of n float32 values (NaNs skipped: -inf and +inf if
 * all are NaN), and in *at the first column holding the largest when it is
 * larger than `best` (else *at is left alone). The next block is prefetched. */
LUCID_ROW_AVX512_FN double lucid_row_range_f32(const float *src, ptrdiff_t n, double best,
                                               double *bottom, ptrdiff_t *at)
{
    __m512 top = _mm512_set1_ps(-INFINITY), low = _mm512_set1_ps(INFINITY);
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(src + j);
        _mm_prefetch((const char *)(src + j + LUCID_ROW_BLOCK), _MM_HINT_T0);
        /* vmaxps returns its second operand when the first is NaN. */
        top = _mm512_max_ps(v, top);
        low = _mm512_min_ps(v, low);
    }
    if (j < n) {
        __mmask16 valid = (__mmask16)((1u << (n - j)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(valid, src + j);
        top = _mm512_mask_max_ps(top, valid, v, top);
        low = _mm512_mask_min_ps(low, valid, v, low);
    }
    float t = _mm512_reduce_max_ps(top);
    *bottom = _mm512_reduce_min_ps(low);
    if (t > best) {
        /* The first column equal to the maximum (a NaN never equals it),
         * 16 columns a step; the maximum is in the block, so the search ends
         * inside it. */
        __m512 target = _mm512_set1_ps(t);
        for (j = 0; j < n; j += 16) {
            __mmask16 valid = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
            __mmask16 hit = _mm512_mask_cmp_ps_mask(valid, _mm512_maskz_loadu_ps(valid, src + j),
                                                    target, _CMP_EQ_OQ);
            if (hit) {
                *at = j + __builtin_ctz(hit);
                break;
            }
        }
    }
    return t;
}

/* Each loop below runs over groups of 16 (LUCID_AVX512_FOR_GROUPS_OF_16).
 * MODE is a constant in each copy of the loop, so its tests leave the loop:
 * 0  every argument in the fast exponential's range: no clamps;
 * 1  clamps and selects (some argument below LUCID_ROW_FAST_EXP_MIN, or -inf);
 * 2  as 1, with the argument computed as (v - shift) * scale: when
 *    shift * scale is large (huge logits, tiny temperatures) the one-rounding
 *    v * scale - shift_scaled is off by half an ulp of shift * scale, which
 *    would no longer be negligible. Sums are folded in a fixed order. */
#define LUCID_ROW_FAST_LOOP(STEP, MODE) LUCID_AVX512_FOR_GROUPS_OF_16(STEP, MODE)
#define LUCID_ROW_FAST_LOOPS(STEP)                                               \
    do {                                                                         \
        if (mode == 2)                                                           \
            LUCID_ROW_FAST_LOOP(STEP, 2);                                        \
        else if (mode == 1)                                                      \
            LUCID_ROW_FAST_LOOP(STEP, 1);                                        \
        else                                                                     \
            LUCID_ROW_FAST_LOOP(STEP, 0);                                        \
    } while (0)
/* The exponential's argument of logits v: (v - shift) / T. */
#define LUCID_ROW_FAST_ARGUMENT(v, MODE)                                         \
    ((MODE) == 2 ? _mm512_mul_pd(_mm512_sub_pd((v), m), s) : _mm512_fmsub_pd((v), s, shift))
/* Largest |shift * scale| for which MODE 0 and 1 compute the argument in one
 * rounding: the shift's rounding (half an ulp, under 5e-13) moves every
 * weight of the block by the same factor, well inside the accuracy bound. */
#define LUCID_ROW_FUSED_LIMIT 4096.0

/* The mode of a block of logits whose smallest value is `bottom`. */
LUCID_ROW_AVX512_FN int lucid_row_fast_mode(double bottom, double shift, double scale)
{
    if (!(fabs(shift * scale) <= LUCID_ROW_FUSED_LIMIT))
        return 2;
    return !((bottom - shift) * scale >= LUCID_ROW_FAST_EXP_MIN);
}
LUCID_ROW_AVX512_INLINE double lucid_row_fold2(const __m512d *a)
{
    return _mm512_reduce_add_pd(_mm512_add_pd(a[0], a[1]));
}

/* Teacher's block, both sides logits: w_j = exp((t_j - max) * scale),
 * d_j = t_j - origin (0 where w_j = 0, so that a class the teacher rules out
 * adds 0 to a student's sum); returns the sum of the w_j. `mode`: see
 * LUCID_ROW_FAST_LOOP (lucid_row_fast_mode). */
#define LUCID_ROW_TEACHER_LOGITS_STEP(J, H, VALID, MODE)                         \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d v = lucid_avx512_load8_f32(t, J, valid);                         \
        __m512d c = LUCID_ROW_FAST_ARGUMENT(v, MODE);                            \
        __m512d x = _mm512_maskz_mov_pd(valid, (MODE) ? lucid_exp16_clamped(&e, c) \
                                                     : lucid_exp16_core(&e, c)); \
        __m512d diff = _mm512_maskz_sub_pd(valid, v, o);                         \
        if (MODE)                                                                \
            diff = _mm512_mask_mov_pd(diff, _mm512_cmp_pd_mask(x, zero, _CMP_EQ_OQ), zero); \
        _mm512_storeu_pd(w + (J), x);                                            \
        _mm512_storeu_pd(d + (J), diff);                                         \
        acc[H] = _mm512_add_pd(acc[H], x);                                       \
    } while (0)

LUCID_ROW_AVX512_INLINE double lucid_row_teacher_logits_f32(const float *t, ptrdiff_t n,
                                                         double scale, double max,
                                                         double origin, int mode,
                                                         double *restrict w, double *restrict d)
{
    const lucid_exp16 e = lucid_exp16_load();
    const __m512d s = _mm512_set1_pd(scale), shift = _mm512_set1_pd(max * scale);
    const __m512d m = _mm512_set1_pd(max);
    const __m512d o = _mm512_set1_pd(origin), zero = _mm512_setzero_pd();
    __m512d acc[2] = {zero, zero};
    LUCID_ROW_FAST_LOOPS(LUCID_ROW_TEACHER_LOGITS_STEP);
    return lucid_row_fold2(acc);
}

/* A student's block against the teacher's (w, d), both logits: adds the sum
 * of exp((s_j - max) * scale) to *total and returns the sum of
 * w_j (d_j - (s_j - origin)), where w_j = 0 adds 0 (as row_blocks.h's raw term). */
#define LUCID_ROW_STUDENT_LOGITS_STEP(J, H, VALID, MODE)                         \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d v = lucid_avx512_load8_f32(s_row, J, valid);                     \
        __m512d c = LUCID_ROW_FAST_ARGUMENT(v, MODE);                            \
        __m512d x = (MODE) ? lucid_exp16_clamped(&e, c) : lucid_exp16_core(&e, c); \
        __m512d weight = _mm512_loadu_pd(w + (J));                               \
        __m512d diff = _mm512_sub_pd(_mm512_loadu_pd(d + (J)), _mm512_sub_pd(v, o)); \
        sums[H] = _mm512_mask_add_pd(sums[H], valid, sums[H], x);                \
        if (MODE)                                                                \
            terms[H] = _mm512_mask3_fmadd_pd(                                    \
                weight, diff, terms[H], _mm512_cmp_pd_mask(weight, zero, _CMP_NEQ_UQ)); \
        else                                                                     \
            terms[H] = _mm512_fmadd_pd(weight, diff, terms[H]);                  \
    } while (0)

LUCID_ROW_AVX512_INLINE double lucid_row_student_logits_f32(const float *s_row, ptrdiff_t n,
                                                         double scale, double max,
                                                         double origin, int mode,
                                                         const double *restrict w,
                                                         const double *restrict d,
                                                         double *total)
{
    const lucid_exp16 e = lucid_exp16_load();
    const __m512d s = _mm512_set1_pd(scale), shift = _mm512_set1_pd(max * scale);
    const __m512d m = _mm512_set1_pd(max);
    const __m512d o = _mm512_set1_pd(origin), zero = _mm512_setzero_pd();
    __m512d sums[2] = {zero, zero}, terms[2] = {zero, zero};
    LUCID_ROW_FAST_LOOPS(LUCID_ROW_STUDENT_LOGITS_STEP);
    *total += lucid_row_fold2(sums);
    return lucid_row_fold2(terms);
}

/* The teacher's block and one student's in a single loop, both logits: the
 * sums of the two loops above, operation for operation and lane for lane
 * (so a student's KL is bitwise the same alone as beside others), without
 * the w and d buffers between them. The common case of an evaluation job,
 * and the distillation loss's forward (_distill.pyx), which also asks for
 * each exponential as a float32 (keep_t, keep_s: NULL when not wanted) for
 * its gradient, and for rows `ahead_t`, `ahead_s` to be brought into L2
 * meanwhile (the next row, when this one is in cache already).
 * `mode` (0 or 1, see LUCID_ROW_FAST_LOOP) serves both sides: in the fast
 * exponential's range, the clamped exponential gives the core one's bits.
 * Adds the sums to *t_total and *s_total and returns the student's terms. */
#define LUCID_ROW_PAIR_KEEP_T 2
#define LUCID_ROW_PAIR_KEEP_S 4
#define LUCID_ROW_PAIR_STEP(J, H, VALID, ARG)                                    \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d tv = lucid_avx512_load8_f32(t, J, valid);                        \
        __m512d sv = lucid_avx512_load8_f32(s_row, J, valid);                    \
        __m512d ct = _mm512_fmsub_pd(tv, s, t_shift);                            \
        __m512d cs = _mm512_fmsub_pd(sv, s, s_shift);                            \
        __m512d x = _mm512_maskz_mov_pd(valid, ((ARG) & 1) ? lucid_exp16_clamped(&e, ct) \
                                                           : lucid_exp16_core(&e, ct)); \
        __m512d y = ((ARG) & 1) ? lucid_exp16_clamped(&e, cs) : lucid_exp16_core(&e, cs); \
        __m512d diff = _mm512_maskz_sub_pd(valid, tv, t_origin);                 \
        /* One line (16 floats) of each row ahead per group of 16. */           \
        _mm_prefetch((const char *)((H) ? ahead_s + (J) - 8 : ahead_t + (J)), _MM_HINT_T1); \
        if ((ARG) & 1)                                                           \
            diff = _mm512_mask_mov_pd(diff, _mm512_cmp_pd_mask(x, zero, _CMP_EQ_OQ), zero); \
        acc[H] = _mm512_add_pd(acc[H], x);                                       \
        diff = _mm512_sub_pd(diff, _mm512_sub_pd(sv, s_origin));                 \
        sums[H] = _mm512_mask_add_pd(sums[H], valid, sums[H], y);                \
        if ((ARG) & 1)                                                           \
            terms[H] = _mm512_mask3_fmadd_pd(x, diff, terms[H],                  \
                                             _mm512_cmp_pd_mask(x, zero, _CMP_NEQ_UQ)); \
        else                                                                     \
            terms[H] = _mm512_fmadd_pd(x, diff, terms[H]);                       \
        if ((ARG) & LUCID_ROW_PAIR_KEEP_T)                                       \
            _mm256_mask_storeu_ps(keep_t + (J), valid, _mm512_cvtpd_ps(x));      \
        if ((ARG) & LUCID_ROW_PAIR_KEEP_S)                                       \
            _mm256_mask_storeu_ps(keep_s + (J), valid, _mm512_cvtpd_ps(y));      \
    } while (0)

LUCID_ROW_AVX512_INLINE double lucid_row_pair_logits_f32(const float *t, const float *s_row,
                                                      ptrdiff_t n, double scale,
                                                      const lucid_row_side *ts,
                                                      const lucid_row_side *ss, int mode,
                                                      float *keep_t, float *keep_s,
                                                      const float *ahead_t,
                                                      const float *ahead_s,
                                                      double *t_total, double *s_total)
{
    const lucid_exp16 e = lucid_exp16_load();
    const __m512d s = _mm512_set1_pd(scale), zero = _mm512_setzero_pd();
    const __m512d t_shift = _mm512_set1_pd(ts->max * scale);
    const __m512d s_shift = _mm512_set1_pd(ss->max * scale);
    const __m512d t_origin = _mm512_set1_pd(ts->origin), s_origin = _mm512_set1_pd(ss->origin);
    __m512d acc[2] = {zero, zero}, sums[2] = {zero, zero}, terms[2] = {zero, zero};
    int arg = mode | (keep_t ? LUCID_ROW_PAIR_KEEP_T : 0) | (keep_s ? LUCID_ROW_PAIR_KEEP_S : 0);
    switch (arg) {
    case 0: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 0); break;
    case 1: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 1); break;
    case 2: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 2); break;
    case 3: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 3); break;
    case 4: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 4); break;
    case 5: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 5); break;
    case 6: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 6); break;
    default: LUCID_AVX512_FOR_GROUPS_OF_16(LUCID_ROW_PAIR_STEP, 7); break;
    }
    *t_total += lucid_row_fold2(acc);
    *s_total += lucid_row_fold2(sums);
    return lucid_row_fold2(terms);
}

/* Teacher's block of log-probabilities: w_j = exp(t_j), d_j = t_j; returns
 * the sum of the w_j. `mode` 1: some value lies outside the fast exponential's
 * range (mode 2 does not occur). */
#define LUCID_ROW_TEACHER_LOG_PROBS_STEP(J, H, VALID, MODE)                      \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d v = lucid_avx512_load8_f32(t, J, valid);                         \
        __m512d x = _mm512_maskz_mov_pd(valid, (MODE) ? lucid_exp16_clamped(&e, v) \
                                                     : lucid_exp16_core(&e, v)); \
        _mm512_storeu_pd(w + (J), x);                                            \
        _mm512_storeu_pd(d + (J), v);                                            \
        acc[H] = _mm512_add_pd(acc[H], x);                                       \
    } while (0)

LUCID_ROW_AVX512_INLINE double lucid_row_teacher_log_probs_f32(const float *t, ptrdiff_t n,
                                                            int mode, double *restrict w,
                                                            double *restrict d)
{
    const lucid_exp16 e = lucid_exp16_load();
    __m512d acc[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    LUCID_ROW_FAST_LOOPS(LUCID_ROW_TEACHER_LOG_PROBS_STEP);
    return lucid_row_fold2(acc);
}

/* A student's block of log-probabilities against the teacher's (w, d):
 * returns the sum of w_j (d_j - s_j). */
#define LUCID_ROW_STUDENT_LOG_PROBS_STEP(J, H, VALID, MODE)                      \
    do {                                                                         \
        __mmask8 valid = (VALID);                                                \
        __m512d v = lucid_avx512_load8_f32(s_row, J, valid);                     \
        __m512d diff = _mm512_sub_pd(_mm512_loadu_pd(d + (J)), v);               \
        terms[H] = _mm512_mask3_fmadd_pd(_mm512_loadu_pd(w + (J)), diff, terms[H], valid); \
    } while (0)

LUCID_ROW_AVX512_INLINE double lucid_row_student_log_probs_f32(const float *s_row, ptrdiff_t n,
                                                            const double *restrict w,
                                                            const double *restrict d)
{
    __m512d terms[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    LUCID_ROW_FAST_LOOP(LUCID_ROW_STUDENT_LOG_PROBS_STEP, 0);
    return lucid_row_fold2(terms);
}

#endif /* LUCID_ROW_AVX512_H */
