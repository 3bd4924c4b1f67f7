/* Branchless log and exp for float and double, written so that loops over
 * them vectorise.
 *
 * libm's logf/expf are scalar calls with branches: a loop that calls them runs
 * one element at a time. These functions use only arithmetic, integer bit
 * operations and selects written as bit masks, so gcc vectorises a loop over
 * them for whatever instruction set the loop is compiled for (SSE2, AVX2,
 * AVX-512: see kl_runs.h). No -ffast-math: every special value is decided by
 * an explicit comparison and comes out exactly as IEEE and libm say
 * (log(0) = -inf, log(+inf) = +inf, log(x < 0) = NaN, exp(-inf) = 0,
 * exp(+inf) = +inf, NaN in -> NaN out, subnormal inputs and results exact).
 *
 * Accuracy (measured over every float32 input by `python tests/test_simd_log_exp.py`,
 * whose test functions repeat a dense sweep in the suite; figures in
 * docs/performance.rst, "Accuracy"): lucid_log_f32 and lucid_exp_f32 are within
 * 1 ulp of the exact result everywhere, whether or not the compiler contracts
 * a * b + c into an FMA. The float64 versions are within a few ulp (the KL
 * contract asks for 1e-12 relative).
 *
 * Method. log: a = 2**k * m with m in [sqrt(1/2), sqrt(2)), f = m - 1 exactly,
 * log(1 + f) by a minimax polynomial (float) or fdlibm's f/(2 + f) series
 * (double); k * log(2) is added in two parts so that no rounding error of the
 * large part reaches the result. exp: t = n * log(2) + r with |r| <= log(2)/2,
 * exp(r) by a minimax polynomial, 2**n applied as two exact power-of-two
 * factors so that results in the subnormal range are rounded once.
 */
#ifndef LUCID_LOG_EXP_H
#define LUCID_LOG_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bit casts and bitwise selects. memcpy is the portable bit cast; gcc turns it
 * into a register move and vectorises it. A mask is all ones (true) or zeros. */
static inline uint32_t lucid_bits_f32(float v) { uint32_t u; memcpy(&u, &v, sizeof u); return u; }
static inline float lucid_from_bits_f32(uint32_t u) { float v; memcpy(&v, &u, sizeof v); return v; }
static inline uint64_t lucid_bits_f64(double v) { uint64_t u; memcpy(&u, &v, sizeof u); return u; }
static inline double lucid_from_bits_f64(uint64_t u) { double v; memcpy(&v, &u, sizeof v); return v; }

static inline float lucid_select_f32(int condition, float if_true, float if_false)
{
    uint32_t mask = (uint32_t)0 - (uint32_t)(condition != 0);
    return lucid_from_bits_f32((mask & lucid_bits_f32(if_true)) |
                               (~mask & lucid_bits_f32(if_false)));
}

static inline double lucid_select_f64(int condition, double if_true, double if_false)
{
    uint64_t mask = (uint64_t)0 - (uint64_t)(condition != 0);
    return lucid_from_bits_f64((mask & lucid_bits_f64(if_true)) |
                               (~mask & lucid_bits_f64(if_false)));
}

/* Special values of log, shared by both precisions (r: the value for a > 0):
 * +-0 -> -inf, negative or NaN -> NaN. `a >= 0` is false for NaN. */
#define LUCID_LOG_SPECIAL(T, S, a, r)                                          \
    lucid_select_##S(!((a) >= 0), (T)NAN, lucid_select_##S((a) == 0, -(T)INFINITY, (r)))

/* log(b) for the bits ib of a positive normal float b, minus k_offset * log(2):
 * the arithmetic shared by lucid_log_normal_f32 and lucid_log_positive_f32,
 * so that both give the same bits for a normal input. */
static inline float lucid_log_core_f32(uint32_t ib, float k_offset)
{
    /* log(2) in two parts: 0x1.63p-1 has 9 significant bits, so k * LN2_HI is
     * exact for every exponent k a float can have. */
    const float LN2_HI = 0x1.63p-1f, LN2_LO = -0x1.bd0106p-13f;
    const uint32_t SQRT_HALF = 0x3f3504f3u; /* bits of sqrt(1/2) */
    /* b = 2**k * m with m in [sqrt(1/2), sqrt(2)); biased so that the exponent
     * field of ix is k + 127 >= 0 (a logical shift, which every level has). */
    uint32_t ix = ib + (0x3f800000u - SQRT_HALF);
    float k = (float)((int32_t)(ix >> 23) - 127) - k_offset;
    float f = lucid_from_bits_f32((ix & 0x007fffffu) + SQRT_HALF) - 1.0f; /* exact */
    /* log(1 + f) = f + f**2 Q(f) with Q(f) = -1/2 + f P(f), P minimax on
     * [sqrt(1/2) - 1, sqrt(2) - 1]. */
    float q = -0x1.2d3636p-4f;
    q = q * f + 0x1.025beap-3f;
    q = q * f - 0x1.0e6826p-3f;
    q = q * f + 0x1.236438p-3f;
    q = q * f - 0x1.54679p-3f;
    q = q * f + 0x1.99986p-3f;
    q = q * f - 0x1.00023cp-2f;
    q = q * f + 0x1.555564p-2f;
    q = q * f - 0.5f;
    float y = f * f * q;
    /* hi + f exactly as s + e (Fast2Sum: |hi| >= |f| whenever hi != 0), so the
     * only rounding of a size comparable to the result is the last addition. */
    float hi = k * LN2_HI;
    float s = hi + f;
    float e = (hi - s) + f;
    return s + (e + (y + k * LN2_LO));
}

/* log(a) for a positive normal finite float a (the common case, which needs
 * none of the selects below); other inputs give unspecified values. */
static inline float lucid_log_normal_f32(float a)
{
    return lucid_log_core_f32(lucid_bits_f32(a), 0.0f);
}

/* log(a) for float a > 0, +inf included; other inputs give unspecified
 * finite values. The KL functions decide a <= 0 and NaN themselves, which
 * saves the selects of lucid_log_f32. */
static inline float lucid_log_positive_f32(float a)
{
    /* Subnormals are scaled by 2**23 first so that their exponent field is k. */
    int subnormal = a < 0x1p-126f;
    uint32_t ib = lucid_bits_f32(lucid_select_f32(subnormal, a * 0x1p23f, a));
    float r = lucid_log_core_f32(ib, lucid_select_f32(subnormal, 23.0f, 0.0f));
    return lucid_select_f32(a == INFINITY, INFINITY, r);
}

/* log(a) for every float a. */
static inline float lucid_log_f32(float a)
{
    return LUCID_LOG_SPECIAL(float, f32, a, lucid_log_positive_f32(a));
}

/* 2**n as the product of two normal powers of two, for n in [-300, 300]
 * (float) or [-2200, 2200] (double): n + 2 * bias is split into two halves,
 * each a biased exponent. Multiplying a value in [1/2, 2] by the first is
 * exact, so the second rounds once, also into the subnormal range. */
static inline float lucid_scale_f32(float v, uint32_t n_plus_2bias)
{
    uint32_t e1 = n_plus_2bias >> 1, e2 = n_plus_2bias - e1;
    return v * lucid_from_bits_f32(e1 << 23) * lucid_from_bits_f32(e2 << 23);
}

static inline double lucid_scale_f64(double v, uint64_t n_plus_2bias)
{
    uint64_t e1 = n_plus_2bias >> 1, e2 = n_plus_2bias - e1;
    return v * lucid_from_bits_f64(e1 << 52) * lucid_from_bits_f64(e2 << 52);
}

/* exp(c) for float c in [-104, 89] as v * 2**n, v in [1/2, 2]: returns v and
 * sets *n_plus_2bias. Shared by lucid_exp_f32 and lucid_exp_normal_f32. */
static inline float lucid_exp_reduced_f32(float c, uint32_t *n_plus_2bias)
{
    const float LOG2E = 0x1.715476p0f, LN2_HI = 0x1.63p-1f, LN2_LO = -0x1.bd0106p-13f;
    /* Adding 1.5 * 2**23 rounds to an integer held in the low mantissa bits. */
    const float ROUND = 0x1.8p23f;
    float shifted = c * LOG2E + ROUND;
    *n_plus_2bias = lucid_bits_f32(shifted) - lucid_bits_f32(ROUND) + 254u;
    float n = shifted - ROUND;
    /* c = n log(2) + r_hi + r_lo; r_hi is exact (Sterbenz). */
    float r_hi = c - n * LN2_HI;
    float r_lo = -(n * LN2_LO);
    float r = r_hi + r_lo;
    /* exp(r) = 1 + r + r**2 Q(r), Q minimax on [-log(2)/2, log(2)/2]. */
    float q = 0x1.68532cp-10f;
    q = q * r + 0x1.123bccp-7f;
    q = q * r + 0x1.555b96p-5f;
    q = q * r + 0x1.55548ep-3f;
    q = q * r + 0x1.fffff8p-2f;
    /* 1 + r_hi == s + e exactly (Fast2Sum), so neither the rounding of r nor
     * that of 1 + r reaches the result: only the last addition rounds. */
    float s = 1.0f + r_hi;
    float e = (1.0f - s) + r_hi;
    return s + (e + (r_lo + r * r * q));
}

/* exp(t) for float. */
static inline float lucid_exp_f32(float t)
{
    /* Beyond [-104, 89] the result is 0 or +inf anyway; clamping keeps n in
     * range. NaN fails both comparisons and stays NaN through the arithmetic. */
    float c = lucid_select_f32(t < -104.0f, -104.0f, lucid_select_f32(t > 89.0f, 89.0f, t));
    uint32_t n_plus_2bias;
    float v = lucid_exp_reduced_f32(c, &n_plus_2bias);
    return lucid_scale_f32(v, n_plus_2bias);
}

/* exp(t) for float |t| <= LUCID_EXP_NORMAL_F32, where the result is normal
 * (the common case): no clamp, and one exact scaling by 2**n, which gives
 * the same bits as lucid_exp_f32's two. Other inputs: unspecified values. */
#define LUCID_EXP_NORMAL_F32 87.0f
static inline float lucid_exp_normal_f32(float t)
{
    uint32_t n_plus_2bias;
    float v = lucid_exp_reduced_f32(t, &n_plus_2bias);
    return v * lucid_from_bits_f32((n_plus_2bias - 127u) << 23);
}

/* log(b) for the bits ib of a positive normal double b, minus k_offset *
 * log(2), by fdlibm's method: s = f / (2 + f), a series in s**2. Shared by
 * lucid_log_normal_f64 and lucid_log_positive_f64. */
static inline double lucid_log_core_f64(uint64_t ib, double k_offset)
{
    const double LN2_HI = 0x1.62e42feep-1, LN2_LO = 0x1.a39ef35793c76p-33;
    const uint64_t SQRT_HALF = 0x3fe6a09e667f3bcdull;
    uint64_t ix = ib + (0x3ff0000000000000ull - SQRT_HALF);
    /* k as a double without a 64-bit integer conversion (AVX2 has none):
     * 2**52 + e is exact, then subtract 2**52 + bias. */
    double k = lucid_from_bits_f64((ix >> 52) | 0x4330000000000000ull) - 0x1.00000000003ffp52
               - k_offset;
    double f = lucid_from_bits_f64((ix & 0x000fffffffffffffull) + SQRT_HALF) - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double R = 0x1.2f112df3e5244p-3;
    R = R * z + 0x1.39a09d078c69fp-3;
    R = R * z + 0x1.7466496cb03dep-3;
    R = R * z + 0x1.c71c51d8e78afp-3;
    R = R * z + 0x1.2492494229359p-2;
    R = R * z + 0x1.999999997fa04p-2;
    R = R * z + 0x1.5555555555593p-1;
    R = R * z;
    double half_f2 = 0.5 * f * f;
    return k * LN2_HI - ((half_f2 - (s * (half_f2 + R) + k * LN2_LO)) - f);
}

/* log(a) for a positive normal finite double a; other inputs: unspecified. */
static inline double lucid_log_normal_f64(double a)
{
    return lucid_log_core_f64(lucid_bits_f64(a), 0.0);
}

/* log(a) for double a > 0, +inf included (other inputs: unspecified finite
 * values). */
static inline double lucid_log_positive_f64(double a)
{
    int subnormal = a < 0x1p-1022;
    uint64_t ib = lucid_bits_f64(lucid_select_f64(subnormal, a * 0x1p54, a));
    double r = lucid_log_core_f64(ib, lucid_select_f64(subnormal, 54.0, 0.0));
    return lucid_select_f64(a == INFINITY, INFINITY, r);
}

/* log(a) for every double a. */
static inline double lucid_log_f64(double a)
{
    return LUCID_LOG_SPECIAL(double, f64, a, lucid_log_positive_f64(a));
}

/* exp(c) for double c in [-746, 710] as v * 2**n: returns v and sets
 * *n_plus_2bias. Shared by lucid_exp_f64 and lucid_exp_normal_f64. */
static inline double lucid_exp_reduced_f64(double c, uint64_t *n_plus_2bias)
{
    const double LOG2E = 0x1.71547652b82fep0, LN2_HI = 0x1.62e42feep-1,
                 LN2_LO = 0x1.a39ef35793c76p-33, ROUND = 0x1.8p52;
    double shifted = c * LOG2E + ROUND;
    *n_plus_2bias = lucid_bits_f64(shifted) - lucid_bits_f64(ROUND) + 2046u;
    double n = shifted - ROUND;
    double r = (c - n * LN2_HI) - n * LN2_LO;
    double q = 0x1.add741be6cfcap-26;
    q = q * r + 0x1.28af3b651cd0bp-22;
    q = q * r + 0x1.71deec77b25ddp-19;
    q = q * r + 0x1.a01997cd32dd4p-16;
    q = q * r + 0x1.a01a014493a95p-13;
    q = q * r + 0x1.6c16c18529f74p-10;
    q = q * r + 0x1.1111111122b4fp-7;
    q = q * r + 0x1.55555555502a6p-5;
    q = q * r + 0x1.555555555550fp-3;
    q = q * r + 0x1.000000000000bp-1;
    return 1.0 + (r + r * r * q);
}

/* exp(t) for double. */
static inline double lucid_exp_f64(double t)
{
    double c = lucid_select_f64(t < -746.0, -746.0, lucid_select_f64(t > 710.0, 710.0, t));
    uint64_t n_plus_2bias;
    double v = lucid_exp_reduced_f64(c, &n_plus_2bias);
    return lucid_scale_f64(v, n_plus_2bias);
}

/* exp(t) for double |t| <= LUCID_EXP_NORMAL_F64 (a normal result): the same
 * bits as lucid_exp_f64 without its clamp and with one exact scaling. */
#define LUCID_EXP_NORMAL_F64 708.0
static inline double lucid_exp_normal_f64(double t)
{
    uint64_t n_plus_2bias;
    double v = lucid_exp_reduced_f64(t, &n_plus_2bias);
    return v * lucid_from_bits_f64((n_plus_2bias - 1023u) << 52);
}

#endif /* LUCID_LOG_EXP_H */
