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

/* float -> IEEE half bits, rounded to nearest even as numpy's astype rounds:
 * overflow to +-inf, gradual underflow to subnormals and zero, NaN kept NaN
 * (quiet, sign kept). Lets float16 results be written straight from float
 * work buffers. */
static inline uint16_t lucid_float_to_half(float f)
{
    uint32_t x, sign;
    union { uint32_t u; float f; } v;
    v.f = f;
    x = v.u;
    sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x47800000u)                    /* >= 65536, inf or NaN */
        return (uint16_t)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x < 0x38800000u) {                   /* below half's smallest normal */
        /* Adding 0.5 puts the half's subnormal bits at the bottom of the
         * float's mantissa, rounded to nearest even by the addition. */
        v.u = x;
        v.f += 0.5f;
        return (uint16_t)(sign | (v.u - 0x3f000000u));
    }
    /* Normal: rebias the exponent and round the 13 dropped bits to nearest
     * even; a carry into the exponent is right, up to inf (65520 and above). */
    x += 0xc8000fffu + ((x >> 13) & 1u);
    return (uint16_t)(sign | (x >> 13));
}

/* LUCID_DEFINE_KL(T, S) defines the per-element functions for the compute type
 * T (float or double) with name suffix S. One template for both precisions
 * keeps the two from drifting apart.
 *
 * Every function is branchless: both sides of a case are computed and the
 * answer picked with a bit-mask select, so that a loop over them vectorises
 * (kl_simd.h) and special values never depend on how the compiler
 * if-converts. The special values follow the table of docs/api/kl_div.rst. */
/* The thresholds under the names the template below builds from its suffix. */
#define LUCID_EXP_NORMAL_f32 LUCID_EXP_NORMAL_F32
#define LUCID_EXP_NORMAL_f64 LUCID_EXP_NORMAL_F64

#define LUCID_DEFINE_KL(T, S)                                                    \
                                                                                 \
/* Loss where p == 0: 0 log 0 = 0 for x finite or -inf; a NaN or +inf x stays   \
 * NaN, as 0 * x would give (`x < inf` is false for both). */                     \
static inline T lucid_kl_zero_target_loss_##S(T x)                              \
{                                                                                \
    return lucid_select_##S(x < (T)INFINITY, (T)0, (T)NAN);                      \
}                                                                                \
                                                                                 \
/* Every loss is returned as factor * difference, p * (log p - x) in the     \
 * ordinary case, with the special cases chosen through the two operands. A    \
 * sum loop then sees the same last multiplication (which the compiler may     \
 * fuse with the lane's addition) whether it runs the ordinary function or     \
 * this one, so both give the same bits for an ordinary element. */            \
static inline T lucid_kl_elem_##S(T x, T p)                                     \
{                                                                                \
    int positive = p > 0;                                                        \
    T factor = lucid_select_##S(positive, p,                                     \
        lucid_select_##S(p == 0, lucid_kl_zero_target_loss_##S(x), (T)NAN));     \
    T difference = lucid_select_##S(positive, lucid_log_positive_##S(p) - x, (T)0); \
    return factor * difference;                                                  \
}                                                                                \
                                                                                 \
/* The loss for an ordinary target, a positive normal finite p: no selects     \
 * (x = -inf gives +inf and a NaN gives NaN by the arithmetic). */               \
static inline T lucid_kl_elem_ordinary_##S(T x, T p)                            \
{                                                                                \
    return p * (lucid_log_normal_##S(p) - x);                                    \
}                                                                                \
                                                                                 \
/* p = exp(logp) as a factor of an infinite difference: p > 0 whenever logp  \
 * > -inf, so where x is +-inf the factor's size does not matter, only that it  \
 * is positive; 1 keeps it so where exp(logp) underflows to 0, which would      \
 * give 0 * inf = NaN for a loss of +-inf. */                                    \
static inline T lucid_kl_p_factor_from_exp_##S(T x, T p)                       \
{                                                                                \
    int infinite_x = (x == (T)INFINITY) | (x == -(T)INFINITY);                   \
    return lucid_select_##S(infinite_x, (T)1, p);                                \
}                                                                                \
                                                                                 \
/* exp(logp), or exp(logp / 2) above LUCID_EXP_NORMAL, where exp(logp) may     \
 * overflow while a product with it still fits: one exp per element either way. */ \
static inline T lucid_exp_or_root_##S(T logp)                                   \
{                                                                                \
    return lucid_exp_##S(lucid_select_##S(logp > LUCID_EXP_NORMAL_##S, logp * (T)0.5, logp)); \
}                                                                                \
                                                                                 \
/* exp(logp) * v given e = lucid_exp_or_root(logp): e * v below the threshold,  \
 * e * (e v) above it, 0 for v == 0 however large a finite p is (an infinite p  \
 * times 0 stays NaN). */                                                        \
static inline T lucid_scaled_exp_product_##S(T logp, T e, T v)                  \
{                                                                                \
    T big = lucid_select_##S((v == 0) & (logp < (T)INFINITY), (T)0, e * (e * v)); \
    return lucid_select_##S(logp > LUCID_EXP_NORMAL_##S, big, e * v);            \
}                                                                                \
                                                                                 \
static inline T lucid_kl_elem_log_target_##S(T x, T logp)                       \
{                                                                                \
    int zero = logp == -(T)INFINITY;                                             \
    /* Above LUCID_EXP_NORMAL exp(logp) may overflow where the loss still fits:  \
     * p (logp - x) is computed as e * (e (logp - x)) with e = exp(logp / 2),  \
     * and a tie x == logp is 0 however large p is. */                           \
    int big = logp > LUCID_EXP_NORMAL_##S;                                       \
    T e = lucid_exp_or_root_##S(logp);                                           \
    T difference = logp - x;                                                     \
    T p_factor = lucid_kl_p_factor_from_exp_##S(x, e);                           \
    int tie = difference == 0;                                                   \
    T big_factor = lucid_select_##S(tie, (T)0, p_factor);                        \
    T big_difference = lucid_select_##S(tie, (T)0, e * difference);             \
    /* p == 0 means loss 0, or NaN for a NaN or +inf x; otherwise p (logp - x), \
     * +-inf for an infinite x (a NaN logp gives NaN through the difference). */ \
    T factor = lucid_select_##S(zero, lucid_kl_zero_target_loss_##S(x),          \
                                lucid_select_##S(big, big_factor, p_factor));    \
    difference = lucid_select_##S(zero, (T)0,                                    \
                                  lucid_select_##S(big, big_difference, difference)); \
    return factor * difference;                                                  \
}                                                                                \
                                                                                 \
/* The loss for an ordinary log target, |logp| <= LUCID_EXP_NORMAL: exp(logp)  \
 * is normal, and x = -inf gives +inf by the arithmetic. */                      \
static inline T lucid_kl_elem_ordinary_log_target_##S(T x, T logp)              \
{                                                                                \
    return lucid_exp_normal_##S(logp) * (logp - x);                              \
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
    T e = lucid_exp_or_root_##S(logp);                                           \
    return lucid_select_##S(logp == -(T)INFINITY, (T)0,                          \
                            lucid_scaled_exp_product_##S(logp, e, -g));          \
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
    T e = lucid_exp_or_root_##S(logp);                                           \
    int infinite_x = (x == (T)INFINITY) | (x == -(T)INFINITY);                   \
    /* Where x is infinite only the sign of p matters (see p_factor_from_exp). */ \
    T infinite = (logp - x + 1) * g;                                             \
    T finite = lucid_select_##S(logp > LUCID_EXP_NORMAL_##S,                     \
        lucid_scaled_exp_product_##S(logp, e, infinite), e * (logp - x + 1) * g); \
    return lucid_select_##S(logp == -(T)INFINITY, (T)0,                          \
                            lucid_select_##S(infinite_x, infinite, finite));    \
}

LUCID_DEFINE_KL(float, f32)
LUCID_DEFINE_KL(double, f64)

/* Guard keys. The run loops of kl_simd.h compute a group of elements with the
 * ordinary functions above and track the minimum of a key over the group;
 * the group is ordinary when that minimum is at least the guard's threshold,
 * and is computed again with the full functions otherwise. A key costs two
 * vector instructions per element group (an add or an and, and a minimum).
 *
 * Target p: its bits plus the smallest normal's, as a signed integer, are
 * at least twice the smallest normal's exactly for positive normal finite p
 * (+0, subnormals, -inf and negative NaNs land below it; +inf, positive NaNs
 * and negative numbers wrap to negative). */
#define LUCID_GUARD_TARGET_f32 ((int32_t)0x01000000)
static inline int32_t lucid_guard_key_target_f32(float p)
{
    return (int32_t)(lucid_bits_f32(p) + 0x00800000u);
}

#define LUCID_GUARD_TARGET_f64 ((int64_t)0x0020000000000000ll)
static inline int64_t lucid_guard_key_target_f64(double p)
{
    return (int64_t)(lucid_bits_f64(p) + 0x0010000000000000ull);
}

/* Log target: the bits of LUCID_EXP_NORMAL minus those of |logp|, which are
 * >= 0 exactly for |logp| <= LUCID_EXP_NORMAL (NaN's are above every number's). */
#define LUCID_GUARD_LOG_TARGET_f32 ((int32_t)0)
static inline int32_t lucid_guard_key_log_target_f32(float logp)
{
    return (int32_t)lucid_bits_f32(LUCID_EXP_NORMAL_F32) -
           (int32_t)(lucid_bits_f32(logp) & 0x7fffffffu);
}

#define LUCID_GUARD_LOG_TARGET_f64 ((int64_t)0)
static inline int64_t lucid_guard_key_log_target_f64(double logp)
{
    return (int64_t)lucid_bits_f64(LUCID_EXP_NORMAL_F64) -
           (int64_t)(lucid_bits_f64(logp) & 0x7fffffffffffffffull);
}

#endif /* LUCID_KL_MATH_H */
