/* The KL run loops of kl_runs.h and the probes of probe_runs.h (for the
 * benchmarks and tests only), compiled once per SIMD level, and the choice of
 * level at run time.
 *
 * The loops are written once, as always-inline bodies over the per-element
 * functions of kl_math.h. Each level wraps them in functions carrying a gcc /
 * clang `target` attribute, so one portable build (no -march=native) holds
 * baseline, AVX2 and AVX-512 machine code, and _simd.pyx picks a level's
 * tables at import from what the CPU supports (or what LUCID_SIMD asks for).
 *
 * Sums: a run is summed in LUCID_LANES double lanes, element i going to lane
 * i % LUCID_LANES. Two float losses of a lane (elements i and i + 16) are
 * added in float, once, and the pair widened into the double lane: a float32
 * sum rounds in its per-element arithmetic and once per pair, never in a
 * long float accumulator (float lanes of 16 additions lost small terms
 * beside a large one). Widening pairs costs half of widening every loss.
 * Each group of LUCID_FOLD elements is summed in its own lanes, then added
 * to the run's; those are added in lane order at the end, then the last
 * n % LUCID_LANES elements in order. gcc vectorises a
 * loop only when it need not reorder additions (no -ffast-math), and fixed
 * lanes give it that: the summation order is written down here, the same on
 * every level and for every thread count. Levels may still differ in the last
 * bit of an element where the compiler contracts a * b + c into an FMA (AVX2,
 * AVX-512) and cannot on the baseline.
 */

/* Where each generated symbol comes from. S is f32 (float) or f64 (double);
 * LEVEL is baseline, avx2 or avx512, and LUCID_DEFINE_LEVEL(LEVEL, ...) makes
 * both tables of a level. Entry points (in the lucid_kl_runs table of
 * kl_runs.h and the lucid_probe_runs table of probe_runs.h) are thin
 * dispatchers; the loop is in the body they call, and the per-element math in
 * kl_math.h (log_exp.h for the probes' log and exp).
 *
 *   symbol                          made by                    calls the body
 *   lucid_kl_runs_LEVEL (table)     LUCID_DEFINE_KL_TABLE      (the entries below)
 *   lucid_sum_S_LEVEL               LUCID_DEFINE_LEVEL_RUNS    lucid_sum_kl[_log_target]_S
 *   lucid_elementwise_S_LEVEL       LUCID_DEFINE_LEVEL_RUNS    lucid_map_kl[_log_target]_S
 *   lucid_grad_S_LEVEL              LUCID_DEFINE_LEVEL_RUNS    lucid_map_grad_{x,target}[_log_target]_S
 *   lucid_stats_S_LEVEL             LUCID_DEFINE_LEVEL_RUNS    lucid_sum_stats[_log_target]_S
 *   lucid_probe_runs_LEVEL (table)  LUCID_DEFINE_PROBE_TABLE   (the entries below)
 *   lucid_read_both_S_LEVEL         LUCID_DEFINE_LEVEL_PROBES  lucid_sum_read_both_S
 *   lucid_{log,exp}_S_LEVEL         LUCID_DEFINE_LEVEL_PROBES  lucid_map_{log,exp}_S
 *
 *   body (always inline)                       made by
 *   lucid_sum_kl[_log_target]_S                LUCID_DEFINE_SUM        in LUCID_DEFINE_BODIES
 *   lucid_sum_stats[_log_target]_S             LUCID_DEFINE_SUM_STATS  in LUCID_DEFINE_BODIES
 *   lucid_map_kl[_log_target]_S                LUCID_DEFINE_MAP2       in LUCID_DEFINE_BODIES
 *   lucid_map_grad_{x,target}[_log_target]_S   LUCID_DEFINE_GRAD       in LUCID_DEFINE_BODIES
 *   lucid_sum_read_both_S                      LUCID_DEFINE_SUM        in LUCID_DEFINE_PROBE_BODIES
 *   lucid_map_{log,exp}_S                      LUCID_DEFINE_MAP1       in LUCID_DEFINE_PROBE_BODIES
 *
 * So the loop summing float32 losses is LUCID_DEFINE_SUM (with its helpers
 * LUCID_SUM_GROUP and LUCID_FOR_GROUP_PAIRS), instantiated as lucid_sum_kl_f32.
 */
#ifndef LUCID_KL_SIMD_H
#define LUCID_KL_SIMD_H

#include <stddef.h>

#include "kl_math.h"
#include "kl_runs.h"
#include "probe_runs.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define LUCID_X86_DISPATCH 1
#else
#define LUCID_X86_DISPATCH 0
#endif

/* 16 lanes: one AVX-512 register of floats, two AVX2 or four SSE ones. */
#define LUCID_LANES 16
/* Elements per group: the unit of the fast/full path decision below. */
#define LUCID_FOLD 256

/* Elements ahead to prefetch. The hardware prefetcher alone left memory idle
 * while a core did arithmetic: a run took the time to compute plus the time
 * to read. Asking for the data 4 KiB (float) ahead overlaps the two; measured
 * on float32 inputs of 256 MiB, 1024 beat 256 and 4096. Prefetches never
 * fault, so reading ahead past the end of a run is harmless. */
#define LUCID_PREFETCH_AHEAD 1024

#define LUCID_INLINE static inline __attribute__((always_inline))

/* Fast and full paths. Special values (a zero, subnormal, infinite, negative
 * or NaN target) are rare, but deciding them for every element costs a
 * third of a loss's arithmetic. So a group of up to LUCID_FOLD elements is
 * first computed with ORDINARY, a loss without special cases, while the
 * minimum of GUARD_KEY(target) over the group is tracked; if it falls below
 * GUARD, some element was special and the group is computed again with the
 * full function ELEM. ELEM gives the same bits as ORDINARY on ordinary
 * elements (kl_math.h), so which path a group took never shows in the
 * result. */
#define LUCID_GUARDED(KEY_T, KEYS, GUARD) KEY_T KEYS[LUCID_LANES]; \
    for (lane = 0; lane < LUCID_LANES; lane++) KEYS[lane] = (GUARD)
#define LUCID_GUARD_UPDATE(KEY_T, KEYS, GUARD_KEY, VALUE) do {                   \
        KEY_T key_ = GUARD_KEY(VALUE);                                           \
        KEYS[lane] = key_ < KEYS[lane] ? key_ : KEYS[lane];                      \
    } while (0)
/* Whether any key of the group fell below GUARD. */
#define LUCID_GUARD_TRIPPED(KEY_T, KEYS, GUARD, TRIPPED) do {                    \
        KEY_T least_ = (GUARD);                                                  \
        for (lane = 0; lane < LUCID_LANES; lane++)                               \
            least_ = KEYS[lane] < least_ ? KEYS[lane] : least_;                  \
        TRIPPED = least_ < (GUARD);                                              \
    } while (0)

/* The end of the group of LUCID_FOLD elements (or fewer, a multiple of
 * LUCID_LANES) that starts at i, in a run of n. */
#define LUCID_GROUP_STOP(i, n) ((i) + (((n) - (i)) / LUCID_LANES * LUCID_LANES < LUCID_FOLD \
    ? ((n) - (i)) / LUCID_LANES * LUCID_LANES : LUCID_FOLD))

/* for j over one group [i, stop) in steps of LUCID_LANES, and lane over
 * 0..LUCID_LANES-1: BODY, with the inputs a and b prefetched ahead. The lane
 * loop is kept rolled so that gcc vectorises it: unrolled first (as with
 * Python's -fwrapv), it vectorised the outer loop instead, with a transpose
 * per step, 8x slower. */
#define LUCID_FOR_GROUP(a, b, i, stop, BODY)                                     \
    for (j = (i); j < (stop); j += LUCID_LANES) {                                \
        __builtin_prefetch((a) + j + LUCID_PREFETCH_AHEAD);                      \
        __builtin_prefetch((b) + j + LUCID_PREFETCH_AHEAD);                      \
        _Pragma("GCC unroll 1")                                                  \
        for (lane = 0; lane < LUCID_LANES; lane++) {                             \
            BODY;                                                                \
        }                                                                        \
    }

/* The sums' group loop: for j over [i, stop) in steps of 2 * LUCID_LANES,
 * lanes[lane] += F(j + lane) + F(j + LUCID_LANES + lane), the pair added in T
 * and then widened to double (for float, one rounding per pair instead of
 * one per group of 16, at half the cost of widening every loss); a last odd
 * step adds its one element per lane. The guard key of every target is
 * tracked as in LUCID_FOR_GROUP. */
#define LUCID_FOR_GROUP_PAIRS(T, a, b, i, stop, lanes, F, KEY_T, keys, GUARD_KEY) \
    for (j = (i); j + 2 * LUCID_LANES <= (stop); j += 2 * LUCID_LANES) {         \
        /* Two steps of LUCID_FOR_GROUP per iteration: its two prefetches each. */ \
        __builtin_prefetch((a) + j + LUCID_PREFETCH_AHEAD);                      \
        __builtin_prefetch((b) + j + LUCID_PREFETCH_AHEAD);                      \
        __builtin_prefetch((a) + j + LUCID_LANES + LUCID_PREFETCH_AHEAD);        \
        __builtin_prefetch((b) + j + LUCID_LANES + LUCID_PREFETCH_AHEAD);        \
        _Pragma("GCC unroll 1")                                                  \
        for (lane = 0; lane < LUCID_LANES; lane++) {                             \
            T pair_ = F(a[j + lane], b[j + lane]) +                              \
                      F(a[j + LUCID_LANES + lane], b[j + LUCID_LANES + lane]);   \
            lanes[lane] += pair_;                                                \
            LUCID_GUARD_UPDATE(KEY_T, keys, GUARD_KEY, b[j + lane]);             \
            LUCID_GUARD_UPDATE(KEY_T, keys, GUARD_KEY, b[j + LUCID_LANES + lane]); \
        }                                                                        \
    }                                                                            \
    if (j < (stop)) {                                                            \
        _Pragma("GCC unroll 1")                                                  \
        for (lane = 0; lane < LUCID_LANES; lane++) {                             \
            lanes[lane] += F(a[j + lane], b[j + lane]);                          \
            LUCID_GUARD_UPDATE(KEY_T, keys, GUARD_KEY, b[j + lane]);             \
        }                                                                        \
    }

/* The sum of the losses of one group [i, stop) into double lanes: the fast
 * path, and the full one if a special target tripped the guard. */
#define LUCID_SUM_GROUP(T, a, b, i, stop, lanes, ELEM, ORDINARY, KEY_T, GUARD_KEY, GUARD) \
    do {                                                                         \
        int tripped;                                                             \
        LUCID_GUARDED(KEY_T, keys, GUARD);                                       \
        LUCID_FOR_GROUP_PAIRS(T, a, b, i, stop, lanes, ORDINARY, KEY_T, keys, GUARD_KEY); \
        LUCID_GUARD_TRIPPED(KEY_T, keys, GUARD, tripped);                        \
        if (tripped) {                                                           \
            for (lane = 0; lane < LUCID_LANES; lane++)                           \
                lanes[lane] = 0;                                                 \
            LUCID_FOR_GROUP_PAIRS(T, a, b, i, stop, lanes, ELEM, KEY_T, keys, GUARD_KEY); \
        }                                                                        \
    } while (0)

/* NAME(a, b, n): the sum of ELEM(a[i], b[i]) in the fixed lane order above. */
#define LUCID_DEFINE_SUM(NAME, T, ELEM, ORDINARY, KEY_T, GUARD_KEY, GUARD)       \
LUCID_INLINE double NAME(const T *restrict a, const T *restrict b, ptrdiff_t n)  \
{                                                                                \
    double folded[LUCID_LANES] = {0};                                            \
    double total = 0.0;                                                          \
    ptrdiff_t i = 0, j, lane;                                                    \
    while (n - i >= LUCID_LANES) {                                               \
        ptrdiff_t stop = LUCID_GROUP_STOP(i, n);                                 \
        double lanes[LUCID_LANES] = {0};                                         \
        LUCID_SUM_GROUP(T, a, b, i, stop, lanes, ELEM, ORDINARY, KEY_T, GUARD_KEY, GUARD); \
        for (lane = 0; lane < LUCID_LANES; lane++)                               \
            folded[lane] += lanes[lane];                                         \
        i = stop;                                                                \
    }                                                                            \
    for (lane = 0; lane < LUCID_LANES; lane++)                                   \
        total += folded[lane];                                                   \
    for (; i < n; i++)                                                           \
        total += ELEM(a[i], b[i]);                                               \
    return total;                                                                \
}

static inline float lucid_identity_f32(float v) { return v; }
static inline double lucid_identity_f64(double v) { return v; }

/* exp(t) to 8e-5 relative, for the float sums kl_div(validate=True) checks
 * against a tolerance of 1e-3 or more, where it moves the edge by less than
 * 1e-4: a range reduction, a degree-3 polynomial and a scale, with no
 * special cases but two integer clamps. Below -87 (and at -inf) it gives
 * about 1e-38 instead of 0 or a subnormal; above 88 a value of magnitude
 * 1e30 or more, inf or NaN (found so for every float), with which a sum
 * fails its check all the same. A NaN with the sign bit clear stays NaN, one
 * with it set gives 1e-38: the check needs neither, since a NaN in x makes
 * the distribution's KL NaN. double sums, checked to 1e-6, use the accurate
 * lucid_exp_f64. */
static inline float lucid_exp_check_f32(float t)
{
    /* Adding 1.5 * 2**23 + 127 rounds t / log(2) to an integer n held, with
     * the exponent bias, in the low mantissa bits: shifted left by 23 they
     * are the bits of 2**n. */
    const float ROUND = 0x1.8p23f + 127.0f;
    const uint32_t LOW = lucid_bits_f32(-87.0f);
    const int32_t TOP = (int32_t)lucid_bits_f32(ROUND) + 127;
    /* max(t, -87) as one unsigned integer minimum (a float compare and
     * select cost two instructions): read as unsigned integers, the floats
     * below -87 lie above -87's bits, all others but negative NaNs below. */
    uint32_t t_bits = lucid_bits_f32(t);
    float c = lucid_from_bits_f32(t_bits < LOW ? t_bits : LOW);
    float shifted = c * 0x1.715476p0f + ROUND;
    float n = shifted - ROUND;
    float r = c - n * 0x1.62e430p-1f;
    /* Minimax for exp(r) on |r| <= log(2) / 2: relative error below 7.5e-5. */
    float q = 0x1.53491ep-3f;
    q = q * r + 0x1.028b42p-1f;
    q = q * r + 0x1.000acap+0f;
    q = q * r + 0x1.fff68cp-1f;
    /* n at most 127 (one signed integer minimum), so that above 88 the
     * exponent field cannot wrap around to a small or negative 2**n. */
    int32_t e = (int32_t)lucid_bits_f32(shifted);
    e = e < TOP ? e : TOP;
    return q * lucid_from_bits_f32((uint32_t)e << 23);
}
#define lucid_exp_check_f64 lucid_exp_f64

/* NAME(a, b, n, sums): the sum of ELEM(a[i], b[i]) exactly as the sums above
 * add it (same groups, lanes and paths, so the same bits), and alongside, in
 * double lanes, the sums of P_OF(b[i]) and EXP(a[i]) into sums[0] and
 * sums[1]: a distribution's total probability and total exp(log q), which
 * kl_div(validate=True) checks in the same pass as the loss. */
#define LUCID_DEFINE_SUM_STATS(NAME, T, ELEM, ORDINARY, KEY_T, GUARD_KEY, GUARD, P_OF, EXP) \
LUCID_INLINE double NAME(const T *restrict a, const T *restrict b, ptrdiff_t n,  \
                         double *restrict sums)                                  \
{                                                                                \
    double folded[LUCID_LANES] = {0}, p_lanes[LUCID_LANES] = {0};                \
    double q_lanes[LUCID_LANES] = {0};                                           \
    double total = 0.0, p_total = 0.0, q_total = 0.0;                            \
    ptrdiff_t i = 0, j, lane;                                                    \
    while (n - i >= LUCID_LANES) {                                               \
        ptrdiff_t stop = LUCID_GROUP_STOP(i, n);                                 \
        double lanes[LUCID_LANES] = {0};                                         \
        /* The checks need far less than the loss's accuracy: within a group  \
         * p and exp(x) add up in T, from the group just read (in L1). */       \
        T p_group[LUCID_LANES] = {0}, q_group[LUCID_LANES] = {0};                \
        LUCID_SUM_GROUP(T, a, b, i, stop, lanes, ELEM, ORDINARY, KEY_T, GUARD_KEY, GUARD); \
        for (j = i; j < stop; j += LUCID_LANES) {                                \
            _Pragma("GCC unroll 1")                                              \
            for (lane = 0; lane < LUCID_LANES; lane++) {                         \
                p_group[lane] += P_OF(b[j + lane]);                              \
                q_group[lane] += EXP(a[j + lane]);                               \
            }                                                                    \
        }                                                                        \
        for (lane = 0; lane < LUCID_LANES; lane++) {                             \
            folded[lane] += lanes[lane];                                         \
            p_lanes[lane] += p_group[lane];                                      \
            q_lanes[lane] += q_group[lane];                                      \
        }                                                                        \
        i = stop;                                                                \
    }                                                                            \
    for (lane = 0; lane < LUCID_LANES; lane++) {                                 \
        total += folded[lane];                                                   \
        p_total += p_lanes[lane];                                                \
        q_total += q_lanes[lane];                                                \
    }                                                                            \
    for (; i < n; i++) {                                                         \
        total += ELEM(a[i], b[i]);                                               \
        p_total += P_OF(b[i]);                                                   \
        q_total += EXP(a[i]);                                                    \
    }                                                                            \
    sums[0] = p_total;                                                           \
    sums[1] = q_total;                                                           \
    return total;                                                                \
}

/* for (I = 0; I < N; I++) BODY, with A[I] and B[I] prefetched ahead: groups of
 * LUCID_LANES indices (one prefetch of each input per group, the group's loop
 * kept rolled so that it vectorises), then the tail. */
#define LUCID_FOR_PREFETCHED(I, N, A, B, BODY)                                   \
    do {                                                                         \
        ptrdiff_t I##_group = 0, I;                                              \
        for (; I##_group + LUCID_LANES <= (N); I##_group += LUCID_LANES) {       \
            __builtin_prefetch((A) + I##_group + LUCID_PREFETCH_AHEAD);          \
            __builtin_prefetch((B) + I##_group + LUCID_PREFETCH_AHEAD);          \
            _Pragma("GCC unroll 1")                                              \
            for (I = I##_group; I < I##_group + LUCID_LANES; I++) {              \
                BODY;                                                            \
            }                                                                    \
        }                                                                        \
        for (I = I##_group; I < (N); I++) {                                      \
            BODY;                                                                \
        }                                                                        \
    } while (0)

/* NAME(a, b, out, n): out[i] = ELEM(a[i], b[i]), by groups on the fast and
 * full paths as the sums. */
#define LUCID_DEFINE_MAP2(NAME, T, ELEM, ORDINARY, KEY_T, GUARD_KEY, GUARD)      \
LUCID_INLINE void NAME(const T *restrict a, const T *restrict b, T *restrict out, \
                       ptrdiff_t n)                                              \
{                                                                                \
    ptrdiff_t i = 0, j, lane;                                                    \
    while (n - i >= LUCID_LANES) {                                               \
        ptrdiff_t stop = LUCID_GROUP_STOP(i, n);                                 \
        int tripped;                                                             \
        LUCID_GUARDED(KEY_T, keys, GUARD);                                       \
        LUCID_FOR_GROUP(a, b, i, stop,                                           \
            out[j + lane] = ORDINARY(a[j + lane], b[j + lane]);                  \
            LUCID_GUARD_UPDATE(KEY_T, keys, GUARD_KEY, b[j + lane]));            \
        LUCID_GUARD_TRIPPED(KEY_T, keys, GUARD, tripped);                        \
        if (tripped)                                                             \
            for (j = i; j < stop; j++)                                           \
                out[j] = ELEM(a[j], b[j]);                                       \
        i = stop;                                                                \
    }                                                                            \
    for (; i < n; i++)                                                           \
        out[i] = ELEM(a[i], b[i]);                                               \
}

/* NAME(a, b, g, g_scalar, out, n): out[i] = ELEM(a[i], b[i], g[i]), or with
 * g[0] for every i when g_scalar (a reduction's upstream gradient), which
 * saves reading, or gathering, a broadcast array. */
#define LUCID_DEFINE_GRAD(NAME, T, ELEM)                                         \
LUCID_INLINE void NAME(const T *restrict a, const T *restrict b, const T *restrict g, \
                       int g_scalar, T *restrict out, ptrdiff_t n)               \
{                                                                                \
    if (g_scalar) {                                                              \
        const T g0 = g[0];                                                       \
        LUCID_FOR_PREFETCHED(i, n, a, b, out[i] = ELEM(a[i], b[i], g0));         \
    } else {                                                                     \
        LUCID_FOR_PREFETCHED(i, n, a, b, out[i] = ELEM(a[i], b[i], g[i]));       \
    }                                                                            \
}

#define LUCID_DEFINE_BODIES(T, S, KEY_T)                                        \
LUCID_DEFINE_SUM(lucid_sum_kl_##S, T, lucid_kl_elem_##S, lucid_kl_elem_ordinary_##S, \
                 KEY_T, lucid_guard_key_target_##S, LUCID_GUARD_TARGET_##S)      \
LUCID_DEFINE_SUM(lucid_sum_kl_log_target_##S, T, lucid_kl_elem_log_target_##S,  \
                 lucid_kl_elem_ordinary_log_target_##S,                          \
                 KEY_T, lucid_guard_key_log_target_##S, LUCID_GUARD_LOG_TARGET_##S) \
LUCID_DEFINE_SUM_STATS(lucid_sum_stats_##S, T, lucid_kl_elem_##S, lucid_kl_elem_ordinary_##S, \
                       KEY_T, lucid_guard_key_target_##S, LUCID_GUARD_TARGET_##S,   \
                       lucid_identity_##S, lucid_exp_check_##S)                   \
LUCID_DEFINE_SUM_STATS(lucid_sum_stats_log_target_##S, T, lucid_kl_elem_log_target_##S, \
                       lucid_kl_elem_ordinary_log_target_##S, KEY_T,             \
                       lucid_guard_key_log_target_##S, LUCID_GUARD_LOG_TARGET_##S, \
                       lucid_exp_check_##S, lucid_exp_check_##S)                 \
LUCID_DEFINE_MAP2(lucid_map_kl_##S, T, lucid_kl_elem_##S, lucid_kl_elem_ordinary_##S, \
                  KEY_T, lucid_guard_key_target_##S, LUCID_GUARD_TARGET_##S)     \
LUCID_DEFINE_MAP2(lucid_map_kl_log_target_##S, T, lucid_kl_elem_log_target_##S,  \
                  lucid_kl_elem_ordinary_log_target_##S,                         \
                  KEY_T, lucid_guard_key_log_target_##S, LUCID_GUARD_LOG_TARGET_##S) \
LUCID_DEFINE_GRAD(lucid_map_grad_x_##S, T, lucid_kl_grad_x_elem_##S)             \
LUCID_DEFINE_GRAD(lucid_map_grad_x_log_target_##S, T, lucid_kl_grad_x_elem_log_target_##S) \
LUCID_DEFINE_GRAD(lucid_map_grad_target_##S, T, lucid_kl_grad_target_elem_##S)   \
LUCID_DEFINE_GRAD(lucid_map_grad_target_log_target_##S, T,                       \
                  lucid_kl_grad_target_elem_log_target_##S)

LUCID_DEFINE_BODIES(float, f32, int32_t)
LUCID_DEFINE_BODIES(double, f64, int64_t)

/* The KL entry points of one level and precision; TARGET is the level's
 * attribute. `flatten` inlines everything below, so that the per-element
 * math is compiled, and vectorised, for the level's instruction set. */
#define LUCID_DEFINE_LEVEL_RUNS(LEVEL, TARGET, T, S)                             \
TARGET static double lucid_sum_##S##_##LEVEL(const T *x, const T *t, ptrdiff_t n, \
                                              int log_target)                    \
{                                                                                \
    return log_target ? lucid_sum_kl_log_target_##S(x, t, n) : lucid_sum_kl_##S(x, t, n); \
}                                                                                \
TARGET static void lucid_elementwise_##S##_##LEVEL(const T *x, const T *t, T *out, \
                                                    ptrdiff_t n, int log_target) \
{                                                                                \
    if (log_target)                                                              \
        lucid_map_kl_log_target_##S(x, t, out, n);                               \
    else                                                                         \
        lucid_map_kl_##S(x, t, out, n);                                          \
}                                                                                \
TARGET static void lucid_grad_##S##_##LEVEL(const T *x, const T *t, const T *g,  \
                                             int g_scalar, T *out, ptrdiff_t n,  \
                                             int log_target, int wrt_target)     \
{                                                                                \
    if (wrt_target && log_target)                                                \
        lucid_map_grad_target_log_target_##S(x, t, g, g_scalar, out, n);        \
    else if (wrt_target)                                                         \
        lucid_map_grad_target_##S(x, t, g, g_scalar, out, n);                    \
    else if (log_target)                                                         \
        lucid_map_grad_x_log_target_##S(x, t, g, g_scalar, out, n);             \
    else                                                                         \
        lucid_map_grad_x_##S(x, t, g, g_scalar, out, n);                         \
}                                                                                \
TARGET static double lucid_stats_##S##_##LEVEL(const T *x, const T *t, ptrdiff_t n, \
                                                int log_target, double *sums)    \
{                                                                                \
    return log_target ? lucid_sum_stats_log_target_##S(x, t, n, sums)            \
                      : lucid_sum_stats_##S(x, t, n, sums);                      \
}

/* The KL table of one level (kl_runs.h). */
#define LUCID_DEFINE_KL_TABLE(LEVEL, TARGET)                                     \
LUCID_DEFINE_LEVEL_RUNS(LEVEL, TARGET, float, f32)                               \
LUCID_DEFINE_LEVEL_RUNS(LEVEL, TARGET, double, f64)                              \
static const lucid_kl_runs lucid_kl_runs_##LEVEL = {                             \
    lucid_sum_f32_##LEVEL, lucid_sum_f64_##LEVEL,                                \
    lucid_elementwise_f32_##LEVEL, lucid_elementwise_f64_##LEVEL,                \
    lucid_grad_f32_##LEVEL, lucid_grad_f64_##LEVEL,                              \
    lucid_stats_f32_##LEVEL, lucid_stats_f64_##LEVEL,                            \
};

/* ---- Probes (probe_runs.h): for the benchmarks and the tests only. ----
 *
 * No computation of lucid goes through this section. The bandwidth probe,
 * read_both, sums a + b with the loop of kl_div's sums (LUCID_DEFINE_SUM), so
 * it reads both inputs as kl_div does and does no other work; a + b needs no
 * full path for special values, so its guard never trips. The test hooks, log and exp, map
 * log_exp.h's functions over a run for the accuracy sweeps. Both are built
 * per level, like the KL runs, so that they measure or check each level's
 * code. */

static inline float lucid_sum_pair_f32(float a, float b) { return a + b; }
static inline double lucid_sum_pair_f64(double a, double b) { return a + b; }
/* The guard key of a loop without special values: never trips, and the
 * compiler removes it. */
static inline int32_t lucid_guard_key_never_trips(double b) { (void)b; return 0; }

/* NAME(a, out, n): out[i] = ELEM(a[i]). */
#define LUCID_DEFINE_MAP1(NAME, T, ELEM)                                         \
LUCID_INLINE void NAME(const T *restrict a, T *restrict out, ptrdiff_t n)        \
{                                                                                \
    LUCID_FOR_PREFETCHED(i, n, a, a, out[i] = ELEM(a[i]));                       \
}

#define LUCID_DEFINE_PROBE_BODIES(T, S)                                          \
LUCID_DEFINE_SUM(lucid_sum_read_both_##S, T, lucid_sum_pair_##S, lucid_sum_pair_##S, \
                 int32_t, lucid_guard_key_never_trips, 0)                        \
LUCID_DEFINE_MAP1(lucid_map_log_##S, T, lucid_log_##S)                           \
LUCID_DEFINE_MAP1(lucid_map_exp_##S, T, lucid_exp_##S)

LUCID_DEFINE_PROBE_BODIES(float, f32)
LUCID_DEFINE_PROBE_BODIES(double, f64)

/* The probe entry points of one level and precision, as LUCID_DEFINE_LEVEL_RUNS. */
#define LUCID_DEFINE_LEVEL_PROBES(LEVEL, TARGET, T, S)                           \
TARGET static double lucid_read_both_##S##_##LEVEL(const T *a, const T *b, ptrdiff_t n) \
{                                                                                \
    return lucid_sum_read_both_##S(a, b, n);                                     \
}                                                                                \
TARGET static void lucid_log_##S##_##LEVEL(const T *a, T *out, ptrdiff_t n)      \
{                                                                                \
    lucid_map_log_##S(a, out, n);                                                \
}                                                                                \
TARGET static void lucid_exp_##S##_##LEVEL(const T *a, T *out, ptrdiff_t n)      \
{                                                                                \
    lucid_map_exp_##S(a, out, n);                                                \
}

/* The probe table of one level (probe_runs.h). */
#define LUCID_DEFINE_PROBE_TABLE(LEVEL, TARGET)                                  \
LUCID_DEFINE_LEVEL_PROBES(LEVEL, TARGET, float, f32)                             \
LUCID_DEFINE_LEVEL_PROBES(LEVEL, TARGET, double, f64)                            \
static const lucid_probe_runs lucid_probe_runs_##LEVEL = {                       \
    lucid_read_both_f32_##LEVEL, lucid_read_both_f64_##LEVEL,                    \
    lucid_log_f32_##LEVEL, lucid_exp_f32_##LEVEL,                                \
    lucid_log_f64_##LEVEL, lucid_exp_f64_##LEVEL,                                \
};

/* ---- End of the probes. ---- */

/* Both tables of one level. */
#define LUCID_DEFINE_LEVEL(LEVEL, TARGET)                                        \
LUCID_DEFINE_KL_TABLE(LEVEL, TARGET)                                             \
LUCID_DEFINE_PROBE_TABLE(LEVEL, TARGET)

LUCID_DEFINE_LEVEL(baseline, __attribute__((flatten)))

#if LUCID_X86_DISPATCH
#if defined(__clang__)
#define LUCID_AVX512_TARGET "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"
#else
/* gcc's generic tuning may prefer 256-bit vectors even where AVX-512 exists. */
#define LUCID_AVX512_TARGET "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,prefer-vector-width=512"
#endif
LUCID_DEFINE_LEVEL(avx2, __attribute__((flatten, target("avx2,fma"))))
LUCID_DEFINE_LEVEL(avx512, __attribute__((flatten, target(LUCID_AVX512_TARGET))))
#endif

/* The best level this CPU (and its operating system) supports. */
static int lucid_cpu_simd_level(void)
{
#if LUCID_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return LUCID_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return LUCID_SIMD_AVX2;
#endif
    return LUCID_SIMD_BASELINE;
}

/* The KL table of a level; without x86 dispatch every level runs the baseline
 * (lucid_cpu_simd_level never offers another there). */
static const lucid_kl_runs *lucid_kl_runs_for(int level)
{
#if LUCID_X86_DISPATCH
    if (level == LUCID_SIMD_AVX512)
        return &lucid_kl_runs_avx512;
    if (level == LUCID_SIMD_AVX2)
        return &lucid_kl_runs_avx2;
#endif
    (void)level;
    return &lucid_kl_runs_baseline;
}

/* The probe table of a level (for the benchmarks and tests only), as above. */
static const lucid_probe_runs *lucid_probe_runs_for(int level)
{
#if LUCID_X86_DISPATCH
    if (level == LUCID_SIMD_AVX512)
        return &lucid_probe_runs_avx512;
    if (level == LUCID_SIMD_AVX2)
        return &lucid_probe_runs_avx2;
#endif
    (void)level;
    return &lucid_probe_runs_baseline;
}

#endif /* LUCID_KL_SIMD_H */
