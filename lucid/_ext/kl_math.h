/* Per-element KL divergence math and the contiguous runs built on it.
 *
 * Layer 1 of lucid's kernels (see _kl_div.pyx for the layers above): small
 * inline functions for one element, then loops over contiguous runs. The
 * Cython layer gathers strided, broadcast or float16 inputs into contiguous
 * buffers of the compute type and calls these runs block by block.
 *
 * Conventions (x = log q, t = p, or log p when log_target):
 *   p > 0            -> p * (log p - x)
 *   p == 0           -> 0, also when x == -inf (0 log 0 = 0), NaN when x is NaN or +inf
 *   p < 0 or NaN     -> NaN (outside the domain, never clipped)
 * Special values are decided by explicit comparisons, so results do not depend
 * on compiler flags beyond IEEE arithmetic (no -ffast-math).
 */
#ifndef LUCID_KL_MATH_H
#define LUCID_KL_MATH_H

#include <math.h>
#include <stdint.h>
#include <stddef.h>

/* IEEE half -> float, exact for every half (subnormals, inf, NaN). */
static inline float lucid_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    union { uint32_t u; float f; } v;
    if (exponent == 0x1fu) {                 /* inf or NaN */
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {              /* normal */
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa != 0) {              /* subnormal: value = mantissa * 2**-24 */
        v.f = (float)mantissa * 5.9604644775390625e-08f;
        v.u |= sign;
        return v.f;
    } else {
        bits = sign;
    }
    v.u = bits;
    return v.f;
}

/* Zero target: the loss is 0 for x finite or -inf; x NaN or +inf stays NaN,
 * as 0 * x would give. */
#define LUCID_ZERO_TARGET_LOSS(x) (((x) == (x) && (x) != INFINITY) ? 0 : NAN)

/* LUCID_DEFINE_KL(T, S, LOG, EXP) defines the element and run functions for
 * the compute type T (float or double) with name suffix S. One template for
 * both precisions keeps the two from drifting apart. */
#define LUCID_DEFINE_KL(T, S, LOG, EXP)                                          \
                                                                                 \
static inline T lucid_kl_elem_##S(T x, T p)                                     \
{                                                                                \
    if (p > 0) return p * (LOG(p) - x);                                          \
    if (p == 0) return LUCID_ZERO_TARGET_LOSS(x);                                \
    return NAN;                                                                  \
}                                                                                \
                                                                                 \
static inline T lucid_kl_elem_log_target_##S(T x, T logp)                       \
{                                                                                \
    /* exp(-inf) * (-inf - x) would be 0 * inf = NaN; p == 0 means loss 0. */   \
    if (logp == -INFINITY) return LUCID_ZERO_TARGET_LOSS(x);                     \
    /* p > 0 but q = 0: +inf, even where exp(logp) underflows to 0. */           \
    if (x == -INFINITY) return logp == logp ? INFINITY : NAN;                    \
    return EXP(logp) * (logp - x);                                               \
}                                                                                \
                                                                                 \
/* d loss / d x = -p; exactly 0 where p == 0. */                                 \
static inline T lucid_kl_grad_x_elem_##S(T x, T p, T g)                         \
{                                                                                \
    (void)x;                                                                     \
    return p == 0 ? 0 : -p * g;                                                  \
}                                                                                \
                                                                                 \
static inline T lucid_kl_grad_x_elem_log_target_##S(T x, T logp, T g)           \
{                                                                                \
    (void)x;                                                                     \
    return logp == -INFINITY ? 0 : -EXP(logp) * g;                               \
}                                                                                \
                                                                                 \
/* d loss / d p = log p + 1 - x: -inf at p == 0 for finite x, as the math says. */ \
static inline T lucid_kl_grad_target_elem_##S(T x, T p, T g)                    \
{                                                                                \
    return (LOG(p) + 1 - x) * g;                                                 \
}                                                                                \
                                                                                 \
/* d loss / d log p = p (log p - x + 1); 0 where p == 0. */                      \
static inline T lucid_kl_grad_target_elem_log_target_##S(T x, T logp, T g)      \
{                                                                                \
    if (logp == -INFINITY) return 0;                                             \
    return EXP(logp) * (logp - x + 1) * g;                                       \
}                                                                                \
                                                                                 \
/* Sum of the losses of a contiguous run, accumulated in double. */              \
static inline double lucid_kl_sum_run_##S(const T *x, const T *t, ptrdiff_t n,  \
                                          int log_target)                        \
{                                                                                \
    double acc = 0.0;                                                            \
    ptrdiff_t i;                                                                 \
    if (log_target) {                                                            \
        for (i = 0; i < n; i++) acc += lucid_kl_elem_log_target_##S(x[i], t[i]);\
    } else {                                                                     \
        for (i = 0; i < n; i++) acc += lucid_kl_elem_##S(x[i], t[i]);           \
    }                                                                            \
    return acc;                                                                  \
}                                                                                \
                                                                                 \
static inline void lucid_kl_none_run_##S(const T *x, const T *t, T *out,        \
                                         ptrdiff_t n, int log_target)            \
{                                                                                \
    ptrdiff_t i;                                                                 \
    if (log_target) {                                                            \
        for (i = 0; i < n; i++) out[i] = lucid_kl_elem_log_target_##S(x[i], t[i]); \
    } else {                                                                     \
        for (i = 0; i < n; i++) out[i] = lucid_kl_elem_##S(x[i], t[i]);         \
    }                                                                            \
}                                                                                \
                                                                                 \
/* Gradient runs: g is the upstream gradient per element. */                     \
static inline void lucid_kl_grad_x_run_##S(const T *x, const T *t, const T *g,  \
                                           T *out, ptrdiff_t n, int log_target)  \
{                                                                                \
    ptrdiff_t i;                                                                 \
    if (log_target) {                                                            \
        for (i = 0; i < n; i++)                                                  \
            out[i] = lucid_kl_grad_x_elem_log_target_##S(x[i], t[i], g[i]);      \
    } else {                                                                     \
        for (i = 0; i < n; i++) out[i] = lucid_kl_grad_x_elem_##S(x[i], t[i], g[i]); \
    }                                                                            \
}                                                                                \
                                                                                 \
static inline void lucid_kl_grad_target_run_##S(const T *x, const T *t,         \
                                                const T *g, T *out, ptrdiff_t n, \
                                                int log_target)                  \
{                                                                                \
    ptrdiff_t i;                                                                 \
    if (log_target) {                                                            \
        for (i = 0; i < n; i++)                                                  \
            out[i] = lucid_kl_grad_target_elem_log_target_##S(x[i], t[i], g[i]); \
    } else {                                                                     \
        for (i = 0; i < n; i++)                                                  \
            out[i] = lucid_kl_grad_target_elem_##S(x[i], t[i], g[i]);            \
    }                                                                            \
}

LUCID_DEFINE_KL(float, f32, logf, expf)
LUCID_DEFINE_KL(double, f64, log, exp)

#endif /* LUCID_KL_MATH_H */
