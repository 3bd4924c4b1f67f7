/* Row runs of the fused distillation loss (lucid/_ext/_distill.pyx) that
 * follow the row kernel's pass over a row.
 *
 * A distillation row is a pair of logit rows, the student's s and the
 * teacher's t, over the same classes. With the temperature T (inv_t = 1 / T),
 *
 *   x_j = s_j / T - max_k s_k / T,  log q_j = x_j - log sum_k exp(x_k)
 *
 * and likewise y_j and log p_j for the teacher. The row kernel (row_kernel.h,
 * lucid_row_pair_for) reads the row once for both normalisers and KL(p || q);
 * the runs here take those constants: the JSD's pass (its mixture needs both
 * normalisers first) and the gradient rows. Neither q nor p is ever written
 * out: every exp and log happens in registers, in double, whatever the
 * storage type of the row (float or double).
 *
 * As in kl_simd.h, each run is written once as an always-inline body and
 * compiled per SIMD level inside a function with that level's `target`
 * attribute, and sums go to LUCID_DISTILL_LANES fixed lanes added in lane
 * order at the end: gcc vectorises them without reordering any addition
 * (no -ffast-math), so a row's result is the same for any thread count.
 * Special values are decided by explicit comparisons (log_exp.h).
 *
 * The AVX-512 level replaces the float32 runs with distill_avx512.h's loops
 * (a table-driven exponential and logarithm, about half the operations),
 * which also take the exps the row kernel kept as float32.
 */
#ifndef LUCID_DISTILL_RUNS_H
#define LUCID_DISTILL_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "log_exp.h"

#define LUCID_DISTILL_LANES 16
#define LUCID_DISTILL_INLINE static inline __attribute__((always_inline))

/* lucid_grad_params.kept: the row kernel's LUCID_ROW_KEPT_ codes. */
enum { LUCID_DISTILL_KEPT_NONE = 0, LUCID_DISTILL_KEPT_F32 = 1, LUCID_DISTILL_KEPT_F64 = 2 };

/* How one side of a row becomes log-probabilities: log p_j = (v_j inv_t - max) - log_sum. */
typedef struct lucid_distill_side {
    double max;
    double log_sum;
} lucid_distill_side;

/* A gradient row: out_j = coef * own_j * (log own_j - log ref_j - k), the
 * "weighted" form, where ref is the other side (weight_own == 0) or the
 * mixture m = weight_own own + (1 - weight_own) other (the JSD); or
 * out_j = coef * (own_j - other_j), the "difference" form. */
typedef struct lucid_grad_params {
    double inv_t;
    lucid_distill_side own, other;
    double coef;
    double k;
    double weight_own;
    int difference;
    /* What the row kernel kept of this row (lucid_row_pair_io.kept): nothing
     * (0); float32 exps (1, AVX-512 float32 runs), exp(own x_j) in the output
     * row itself and, for the difference form, exp(other x_j) at kept_other;
     * or float64 exps (2, the other runs), exp(own x_j) at own_exp. */
    int kept;
    const float *kept_other;
    const double *own_exp;
} lucid_grad_params;

/* 0 where the probability is 0 (0 log 0 = 0, also against an infinite log
 * ratio), the product otherwise; a NaN probability stays NaN. */
LUCID_DISTILL_INLINE double lucid_distill_term(double probability, double value)
{
    return lucid_select_f64(probability == 0.0, 0.0, probability * value);
}

LUCID_DISTILL_INLINE double lucid_distill_log_prob(double v, double inv_t, lucid_distill_side side)
{
    /* The order log_softmax uses: shift by the maximum first, then the log-sum. */
    return (v * inv_t - side.max) - side.log_sum;
}

/* A probability of the JSD's mixture m = beta p + (1 - beta) q: exp(log_p),
 * 0 below e**-700 (1e-304). Its terms are below 1e-301 there, and beta p
 * then stays a normal double whenever p > 0, so log m is never -inf for a
 * class that counts (with subnormal p and q, m could round to 0 and give an
 * infinite term). distill_avx512.h's exponential is 0 there too. */
#define LUCID_DISTILL_MIXTURE_MIN (-700.0)
#define LUCID_DISTILL_MIXTURE_PROB(log_p, p) \
    lucid_select_f64((log_p) < LUCID_DISTILL_MIXTURE_MIN, 0.0, (p))

/* exp(x) for the arguments these runs have, x <= 0 (a shifted logit or a
 * log-probability), -inf (gives 0) and NaN (stays NaN), within 1e-11
 * relative: log_exp.h's reduction and scaling, with a degree-9 Taylor
 * polynomial instead of lucid_exp_f64's degree 10, and one clamp instead of
 * two. Used for float32 and float16 inputs, whose results are checked to
 * 1e-6 relative; float64 inputs use lucid_exp_f64. */
LUCID_DISTILL_INLINE double lucid_distill_exp_short(double x)
{
    const double LOG2E = 0x1.71547652b82fep0, LN2_HI = 0x1.62e42feep-1,
                 LN2_LO = 0x1.a39ef35793c76p-33, ROUND = 0x1.8p52;
    /* Below -746 the result is 0 (and the scaling below stays in range). A
     * bit-mask select: with a conditional expression gcc folds exp(-746) to
     * the constant 0 and branches around the arithmetic, which it cannot
     * vectorise without AVX-512's masks. */
    double c = lucid_select_f64(x < -746.0, -746.0, x);
    double shifted = c * LOG2E + ROUND;
    uint64_t n_plus_2bias = lucid_bits_f64(shifted) - lucid_bits_f64(ROUND) + 2046u;
    double n = shifted - ROUND;
    double r = (c - n * LN2_HI) - n * LN2_LO;
    double q = 1.0 / 362880;
    q = q * r + 1.0 / 40320;
    q = q * r + 1.0 / 5040;
    q = q * r + 1.0 / 720;
    q = q * r + 1.0 / 120;
    q = q * r + 1.0 / 24;
    q = q * r + 1.0 / 6;
    q = q * r + 0.5;
    return lucid_scale_f64(1.0 + (r + r * r * q), n_plus_2bias);
}

#define LUCID_DISTILL_DEFINE_RUNS(T, S, EXP)                                      \
/* One element of the JSD pass: p (log p - log m) and q (log q - log m). */      \
LUCID_DISTILL_INLINE void lucid_distill_jsd_elem_##S(T s, T t, double inv_t,     \
        lucid_distill_side student, lucid_distill_side teacher, double beta,             \
        double *kp, double *kq)                                                  \
{                                                                                \
    double log_q = lucid_distill_log_prob(s, inv_t, student);                    \
    double log_p = lucid_distill_log_prob(t, inv_t, teacher);                    \
    double q = LUCID_DISTILL_MIXTURE_PROB(log_q, EXP(log_q));                    \
    double p = LUCID_DISTILL_MIXTURE_PROB(log_p, EXP(log_p));                    \
    double log_m = lucid_log_f64(beta * p + (1.0 - beta) * q);                   \
    *kp += lucid_distill_term(p, log_p - log_m);                                 \
    *kq += lucid_distill_term(q, log_q - log_m);                                 \
}                                                                                \
                                                                                 \
LUCID_DISTILL_INLINE void lucid_distill_jsd_##S(const T *restrict s, const T *restrict t, \
        ptrdiff_t n, double inv_t, lucid_distill_side student, lucid_distill_side teacher, \
        double beta, double *kl_p_m, double *kl_q_m)                             \
{                                                                                \
    double kp[LUCID_DISTILL_LANES] = {0}, kq[LUCID_DISTILL_LANES] = {0};         \
    double tail_p = 0.0, tail_q = 0.0;                                           \
    ptrdiff_t i = 0, lane;                                                       \
    for (; i + LUCID_DISTILL_LANES <= n; i += LUCID_DISTILL_LANES) {             \
        _Pragma("GCC unroll 1")                                                  \
        for (lane = 0; lane < LUCID_DISTILL_LANES; lane++)                       \
            lucid_distill_jsd_elem_##S(s[i + lane], t[i + lane], inv_t, student, \
                                       teacher, beta, &kp[lane], &kq[lane]);     \
    }                                                                            \
    for (; i < n; i++)                                                           \
        lucid_distill_jsd_elem_##S(s[i], t[i], inv_t, student, teacher, beta,    \
                                   &tail_p, &tail_q);                            \
    *kl_p_m = *kl_q_m = 0.0;                                                     \
    for (lane = 0; lane < LUCID_DISTILL_LANES; lane++) {                         \
        *kl_p_m += kp[lane];                                                     \
        *kl_q_m += kq[lane];                                                     \
    }                                                                            \
    *kl_p_m += tail_p;                                                           \
    *kl_q_m += tail_q;                                                           \
}                                                                                \
                                                                                 \
/* One gradient element in FORM (a constant: 0 difference, 1 weighted against   \
 * the other side, 2 weighted against the mixture). With USE_EXP (a constant), \
 * *own_exp is the exp(own x_j) the row kernel kept: p_own = *own_exp *         \
 * own_scale, one exp fewer than from the logits. */                           \
LUCID_DISTILL_INLINE T lucid_distill_grad_elem_##S(T own, T other, int use_exp,   \
        const double *own_exp, double own_scale, const lucid_grad_params *g, int form) \
{                                                                                \
    double log_own = lucid_distill_log_prob(own, g->inv_t, g->own);              \
    double log_other = lucid_distill_log_prob(other, g->inv_t, g->other);        \
    double p_own = use_exp ? *own_exp * own_scale : EXP(log_own);                \
    double value, log_ref = log_other;                                           \
    if (form == 0)                                                               \
        return (T)(g->coef * (p_own - EXP(log_other)));                          \
    if (form == 2) {                                                             \
        p_own = LUCID_DISTILL_MIXTURE_PROB(log_own, p_own);                      \
        log_ref = lucid_log_f64(g->weight_own * p_own + (1.0 - g->weight_own) *  \
                                LUCID_DISTILL_MIXTURE_PROB(log_other, EXP(log_other))); \
    }                                                                            \
    value = lucid_distill_term(p_own, log_own - log_ref - g->k);                 \
    return (T)(g->coef * value);                                                 \
}                                                                                \
                                                                                 \
LUCID_DISTILL_INLINE void lucid_distill_grad_loop_##S(const T *restrict own,     \
        const T *restrict other, int use_exp, const double *restrict own_exp,    \
        T *restrict out, ptrdiff_t n, const lucid_grad_params *g, int form)      \
{                                                                                \
    const lucid_grad_params params = *g;                                         \
    const double own_scale = 1.0 / lucid_exp_f64(params.own.log_sum);            \
    for (ptrdiff_t i = 0; i < n; i++)                                            \
        out[i] = lucid_distill_grad_elem_##S(own[i], other[i], use_exp, own_exp + i, \
                                             own_scale, &params, form);          \
}                                                                                \
                                                                                 \
/* One gradient row; the form and the kept exps' use are chosen outside the    \
 * element loop. */                                                             \
LUCID_DISTILL_INLINE void lucid_distill_grad_##S(const T *own, const T *other,   \
        T *out, ptrdiff_t n, const lucid_grad_params *g)                         \
{                                                                                \
    int form = g->difference ? 0 : (g->weight_own == 0.0 ? 1 : 2);              \
    int use = g->kept == LUCID_DISTILL_KEPT_F64 && g->own_exp;                   \
    /* Without kept exps the loop is given a pointer it never reads through. */ \
    const double *kept = use ? g->own_exp : &g->coef;                            \
    if (!use && form == 0)                                                       \
        lucid_distill_grad_loop_##S(own, other, 0, kept, out, n, g, 0);          \
    else if (!use && form == 1)                                                  \
        lucid_distill_grad_loop_##S(own, other, 0, kept, out, n, g, 1);          \
    else if (!use)                                                               \
        lucid_distill_grad_loop_##S(own, other, 0, kept, out, n, g, 2);          \
    else if (form == 0)                                                          \
        lucid_distill_grad_loop_##S(own, other, 1, kept, out, n, g, 0);          \
    else if (form == 1)                                                          \
        lucid_distill_grad_loop_##S(own, other, 1, kept, out, n, g, 1);          \
    else                                                                         \
        lucid_distill_grad_loop_##S(own, other, 1, kept, out, n, g, 2);          \
}

LUCID_DISTILL_DEFINE_RUNS(float, f32, lucid_distill_exp_short)
LUCID_DISTILL_DEFINE_RUNS(double, f64, lucid_exp_f64)

/* The entry points of one level; a gradient run takes what the row kernel
 * kept from its params (lucid_grad_params.kept). */
typedef struct lucid_distill_runs {
    void (*jsd_f32)(const float *s, const float *t, ptrdiff_t n, double inv_t,
                    lucid_distill_side student, lucid_distill_side teacher, double beta,
                    double *kl_p_m, double *kl_q_m);
    void (*jsd_f64)(const double *s, const double *t, ptrdiff_t n, double inv_t,
                    lucid_distill_side student, lucid_distill_side teacher, double beta,
                    double *kl_p_m, double *kl_q_m);
    void (*grad_f32)(const float *own, const float *other, float *out, ptrdiff_t n,
                     const lucid_grad_params *params);
    void (*grad_f64)(const double *own, const double *other, double *out, ptrdiff_t n,
                     const lucid_grad_params *params);
} lucid_distill_runs;

/* A level's runs; the AVX-512 level replaces its float32 ones, which then go
 * unused. */
#define LUCID_DISTILL_MAYBE_UNUSED __attribute__((unused))
#define LUCID_DISTILL_DEFINE_LEVEL_PRECISION(LEVEL, TARGET, T, S)                 \
TARGET LUCID_DISTILL_MAYBE_UNUSED static void lucid_distill_jsd_##S##_##LEVEL(   \
        const T *s, const T *t, ptrdiff_t n, double inv_t, lucid_distill_side student, \
        lucid_distill_side teacher, double beta, double *kl_p_m, double *kl_q_m) \
{                                                                                \
    lucid_distill_jsd_##S(s, t, n, inv_t, student, teacher, beta, kl_p_m, kl_q_m); \
}                                                                                \
TARGET LUCID_DISTILL_MAYBE_UNUSED static void lucid_distill_grad_##S##_##LEVEL(  \
        const T *own, const T *other, T *out, ptrdiff_t n, const lucid_grad_params *params) \
{                                                                                \
    lucid_distill_grad_##S(own, other, out, n, params);                          \
}

/* A level's table; JSD_F32 and GRAD_F32 name its float32 runs (the AVX-512
 * level has its own, distill_avx512.h). */
#define LUCID_DISTILL_TABLE(LEVEL, JSD_F32, GRAD_F32)                            \
static const lucid_distill_runs lucid_distill_runs_##LEVEL = {                   \
    JSD_F32, lucid_distill_jsd_f64_##LEVEL,                                      \
    GRAD_F32, lucid_distill_grad_f64_##LEVEL,                                    \
};

#define LUCID_DISTILL_DEFINE_LEVEL(LEVEL, TARGET)                                 \
LUCID_DISTILL_DEFINE_LEVEL_PRECISION(LEVEL, TARGET, float, f32)                  \
LUCID_DISTILL_DEFINE_LEVEL_PRECISION(LEVEL, TARGET, double, f64)

LUCID_DISTILL_DEFINE_LEVEL(baseline, __attribute__((flatten)))
LUCID_DISTILL_TABLE(baseline, lucid_distill_jsd_f32_baseline, lucid_distill_grad_f32_baseline)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define LUCID_DISTILL_X86 1
#include "distill_avx512.h"
LUCID_DISTILL_DEFINE_LEVEL(avx2, __attribute__((flatten, target("avx2,fma"))))
LUCID_DISTILL_TABLE(avx2, lucid_distill_jsd_f32_avx2, lucid_distill_grad_f32_avx2)
LUCID_DISTILL_DEFINE_LEVEL(avx512, __attribute__((flatten, target(LUCID_AVX512_TARGET))))

/* The AVX-512 level's float32 gradient: distill_avx512.h's loop for the form
 * and for what the row kernel kept (float32 exps; float64 ones do not occur
 * for float32 rows at this level and would be left unused). */
__attribute__((target(LUCID_AVX512_TARGET)))
static void lucid_distill_grad_f32_fast(const float *own, const float *other, float *out,
                                        ptrdiff_t n, const lucid_grad_params *params)
{
    lucid_grad_params g = *params;
    g.kept = g.kept == LUCID_DISTILL_KEPT_F32 ? LUCID_DISTILL_KEPT_F32 : LUCID_DISTILL_KEPT_NONE;
    if (g.difference && g.kept && g.kept_other)
        lucid_distill_fast_grad_split_f32(own, other, g.kept_other, out, n, &g);
    else if (g.difference)
        lucid_distill_fast_grad_difference_f32(own, other, out, n, &g);
    else
        lucid_distill_fast_grad_weighted_f32(own, other, out, n, &g);
}
LUCID_DISTILL_TABLE(avx512, lucid_distill_fast_jsd_f32, lucid_distill_grad_f32_fast)

/* out[i] = log_avx512.h's log(m[i]), for the accuracy tests only; returns 0
 * (and writes nothing) when this build has no AVX-512 loops. The caller
 * checks that the CPU runs AVX-512. */
__attribute__((target(LUCID_AVX512_TARGET)))
static int lucid_distill_log16_for_tests(const double *m, double *out, ptrdiff_t n)
{
    const lucid_log16_tables l = lucid_log16_load();
    for (ptrdiff_t j = 0; j < n; j += 8) {
        __mmask8 valid = lucid_avx512_valid8(j, n);
        _mm512_mask_storeu_pd(out + j, valid,
                              lucid_log16(&l, _mm512_maskz_loadu_pd(valid, m + j)));
    }
    return 1;
}
#else
#define LUCID_DISTILL_X86 0
static int lucid_distill_log16_for_tests(const double *m, double *out, ptrdiff_t n)
{
    (void)m, (void)out, (void)n;
    return 0;
}
#endif

/* The table of a level, numbered as _simd.SIMD_LEVELS (which decides the
 * level: this header only follows it); without x86 dispatch, the baseline. */
static const lucid_distill_runs *lucid_distill_runs_for(int level)
{
#if LUCID_DISTILL_X86
    if (level == 2)
        return &lucid_distill_runs_avx512;
    if (level == 1)
        return &lucid_distill_runs_avx2;
#endif
    (void)level;
    return &lucid_distill_runs_baseline;
}

/* float -> IEEE half (how a float16 input's gradient is stored) is
 * lucid_float_to_half in kl_math.h, shared with kl_div's float16 outputs. */

#endif /* LUCID_DISTILL_RUNS_H */
