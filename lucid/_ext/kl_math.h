/* Per-element KL divergence math.
 *
 * Layer 1 of lucid's kernels (see _kl_div.pyx for the layers above): small
 * inline functions for one element. kl_simd.h compiles loops over contiguous
 * runs of them once per SIMD level; the Cython layer gathers strided,
 * broadcast or float16 inputs into contiguous buffers of the compute type and
 * calls those runs block by block.
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

#include "log_exp.h"

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

/* LUCID_DEFINE_KL(T, S) defines the per-element functions for the compute type
 * T (float or double) with name suffix S. One template for both precisions
 * keeps the two from drifting apart.
 *
 * Every function is branchless: both sides of a case are computed and the
 * answer picked with a bit-mask select, so that a loop over them vectorises
 * (kl_simd.h) and special values never depend on how the compiler
 * if-converts. The special values follow SPEC section 2's table. */
#define LUCID_DEFINE_KL(T, S)                                                    \
                                                                                 \
/* Loss where p == 0: 0 log 0 = 0 for x finite or -inf; a NaN or +inf x stays   \
 * NaN, as 0 * x would give (`x < inf` is false for both). */                     \
static inline T lucid_kl_zero_target_loss_##S(T x)                              \
{                                                                                \
    return lucid_select_##S(x < (T)INFINITY, (T)0, (T)NAN);                      \
}                                                                                \
                                                                                 \
static inline T lucid_kl_elem_##S(T x, T p)                                     \
{                                                                                \
    T loss = p * (lucid_log_positive_##S(p) - x);                                \
    return lucid_select_##S(p > 0, loss,                                         \
        lucid_select_##S(p == 0, lucid_kl_zero_target_loss_##S(x), (T)NAN));     \
}                                                                                \
                                                                                 \
static inline T lucid_kl_elem_log_target_##S(T x, T logp)                       \
{                                                                                \
    T loss = lucid_exp_##S(logp) * (logp - x);                                   \
    /* p > 0 but q = 0: +inf, even where exp(logp) underflows to 0. */           \
    loss = lucid_select_##S(x == -(T)INFINITY,                                   \
                            lucid_select_##S(logp == logp, (T)INFINITY, (T)NAN), loss); \
    /* exp(-inf) * (-inf - x) would be 0 * inf = NaN; p == 0 means loss 0. */   \
    return lucid_select_##S(logp == -(T)INFINITY, lucid_kl_zero_target_loss_##S(x), loss); \
}                                                                                \
                                                                                 \
/* d loss / d x = -p; exactly 0 where p == 0. */                                 \
static inline T lucid_kl_grad_x_elem_##S(T x, T p, T g)                         \
{                                                                                \
    (void)x;                                                                     \
    return lucid_select_##S(p == 0, (T)0, -p * g);                               \
}                                                                                \
                                                                                 \
static inline T lucid_kl_grad_x_elem_log_target_##S(T x, T logp, T g)           \
{                                                                                \
    (void)x;                                                                     \
    return lucid_select_##S(logp == -(T)INFINITY, (T)0, -lucid_exp_##S(logp) * g); \
}                                                                                \
                                                                                 \
/* d loss / d p = log p + 1 - x: -inf at p == 0 for finite x, as the math says. */ \
static inline T lucid_kl_grad_target_elem_##S(T x, T p, T g)                    \
{                                                                                \
    return (lucid_log_##S(p) + 1 - x) * g;                                       \
}                                                                                \
                                                                                 \
/* d loss / d log p = p (log p - x + 1); 0 where p == 0. */                      \
static inline T lucid_kl_grad_target_elem_log_target_##S(T x, T logp, T g)      \
{                                                                                \
    return lucid_select_##S(logp == -(T)INFINITY, (T)0,                          \
                            lucid_exp_##S(logp) * (logp - x + 1) * g);           \
}

LUCID_DEFINE_KL(float, f32)
LUCID_DEFINE_KL(double, f64)

#endif /* LUCID_KL_MATH_H */
