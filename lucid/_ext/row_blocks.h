/* Layer 1 of the row kernel (row_kernel.h gives the method and the accuracy
 * argument): block loops over LUCID_ROW_LANES double lanes, which gcc
 * vectorises for whatever level the caller is compiled for. A block of a
 * row is widened into a double buffer (any dtype, any stride) while its
 * maximum and argmax are tracked; the teacher's block becomes weights P_j
 * (and values L_j); a student's block is added into its running sums.
 */
#ifndef LUCID_ROW_BLOCKS_H
#define LUCID_ROW_BLOCKS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_math.h"

/* Columns per block: three double buffers of this size (12 KiB) and the
 * rows streaming through stay in L1; measured out of cache, 512 was 8 %
 * faster than 1024 and 2048. */
#define LUCID_ROW_BLOCK 512
#define LUCID_ROW_LANES 16
/* numpy's NPY_MAXDIMS (numpy 2). */
#define LUCID_ROW_MAX_DIMS 64

#define LUCID_ROW_INLINE static inline __attribute__((always_inline))

enum { LUCID_ROW_LOGITS = 0, LUCID_ROW_LOG_PROBS = 1, LUCID_ROW_PROBS = 2 };

/* Storage types the kernel reads (widened to double on reading). */
enum {
    LUCID_ROW_F32 = 0, LUCID_ROW_F64, LUCID_ROW_F16,
    LUCID_ROW_I8, LUCID_ROW_I16, LUCID_ROW_I32, LUCID_ROW_I64,
    LUCID_ROW_U8, LUCID_ROW_U16, LUCID_ROW_U32, LUCID_ROW_U64
};

/* X(code, C type, conversion to double) for each storage type: the narrow
 * ones, whose values float32 holds exactly (rowwise.py's `narrow`), and the
 * wide ones. */
#define LUCID_ROW_NARROW_TYPES(X)                                                \
    X(LUCID_ROW_F32, float, lucid_row_from_f32)                                  \
    X(LUCID_ROW_F16, uint16_t, lucid_row_from_f16)                               \
    X(LUCID_ROW_I8, int8_t, LUCID_ROW_PLAIN)                                     \
    X(LUCID_ROW_I16, int16_t, LUCID_ROW_PLAIN)                                   \
    X(LUCID_ROW_U8, uint8_t, LUCID_ROW_PLAIN)                                    \
    X(LUCID_ROW_U16, uint16_t, LUCID_ROW_PLAIN)
#define LUCID_ROW_WIDE_TYPES(X)                                                  \
    X(LUCID_ROW_F64, double, LUCID_ROW_PLAIN)                                    \
    X(LUCID_ROW_I32, int32_t, LUCID_ROW_PLAIN)                                   \
    X(LUCID_ROW_I64, int64_t, LUCID_ROW_PLAIN)                                   \
    X(LUCID_ROW_U32, uint32_t, LUCID_ROW_PLAIN)                                  \
    X(LUCID_ROW_U64, uint64_t, LUCID_ROW_PLAIN)

/* One input of shape (lead..., cols): where row index 0 starts, how its
 * elements are stored, and byte strides of the class and leading axes. */
typedef struct {
    const char *data;
    int dtype;
    ptrdiff_t col_stride;
    ptrdiff_t row_strides[LUCID_ROW_MAX_DIMS];
} lucid_row_input;

/* Running state of one side of a row. */
typedef struct {
    double max;         /* logits: the largest value so far (the normaliser's shift) */
    double origin;      /* logits: the first block's largest value, else 0 (see below) */
    double sum;         /* logits: sum of exp((v - max) * scale); teacher: sum of P */
    double terms;       /* students: sum of P_j (L_j - l_j) */
    double best;        /* the argmax's value */
    ptrdiff_t best_index;
} lucid_row_side;


/* for (j = 0; j < n; j++) BODY, with lane = j % LUCID_ROW_LANES and group_
 * = j - lane; the lane loop kept rolled so that gcc vectorises it (see
 * kl_simd.h). */
#define LUCID_ROW_LOOP(n, BODY)                                                  \
    do {                                                                         \
        ptrdiff_t base_ = 0, j, lane;                                            \
        double group_;                                                           \
        for (; base_ + LUCID_ROW_LANES <= (n); base_ += LUCID_ROW_LANES) {       \
            group_ = (double)base_;                                              \
            _Pragma("GCC unroll 1")                                              \
            for (lane = 0; lane < LUCID_ROW_LANES; lane++) {                     \
                j = base_ + lane;                                                \
                BODY;                                                            \
            }                                                                    \
        }                                                                        \
        group_ = (double)base_;                                                  \
        for (j = base_, lane = 0; j < (n); j++, lane++) {                        \
            BODY;                                                                \
        }                                                                        \
        (void)group_;                                                            \
    } while (0)

/* The same over the double buffers of a block, which hold a whole group of
 * lanes past n (LUCID_ROW_BLOCK is a multiple of the lanes): the last, short
 * group runs as a full vector group too, its lanes at j >= n computing on
 * scratch that LUCID_ROW_KEEP(x) then drops from the sums. A scalar tail would
 * cost more than the rest of a short row. */
#define LUCID_ROW_PADDED_LOOP(n, BODY)                                           \
    do {                                                                         \
        ptrdiff_t base_ = 0, j, lane;                                            \
        int valid_ = 1;                                                          \
        for (; base_ + LUCID_ROW_LANES <= (n); base_ += LUCID_ROW_LANES) {       \
            _Pragma("GCC unroll 1")                                              \
            for (lane = 0; lane < LUCID_ROW_LANES; lane++) {                     \
                j = base_ + lane;                                                \
                BODY;                                                            \
            }                                                                    \
        }                                                                        \
        if (base_ < (n)) {                                                       \
            _Pragma("GCC unroll 1")                                              \
            for (lane = 0; lane < LUCID_ROW_LANES; lane++) {                     \
                j = base_ + lane;                                                \
                valid_ = j < (n);                                                \
                BODY;                                                            \
            }                                                                    \
        }                                                                        \
    } while (0)
#define LUCID_ROW_KEEP(x) lucid_select_f64(valid_, (x), 0.0)

#define LUCID_ROW_LANES_INIT(NAME, VALUE) double NAME[LUCID_ROW_LANES];          \
    for (ptrdiff_t l_ = 0; l_ < LUCID_ROW_LANES; l_++) NAME[l_] = (VALUE)

/* Lanes summed pairwise (lane i + width into lane i, width 8, 4, 2, 1): a
 * fixed order, and a short dependency chain for short rows. */
LUCID_ROW_INLINE double lucid_row_fold_sum(double *lanes)
{
    for (int width = LUCID_ROW_LANES / 2; width > 0; width /= 2)
        for (int lane = 0; lane < width; lane++)
            lanes[lane] += lanes[lane + width];
    return lanes[0];
}

static inline double lucid_row_from_f32(float v) { return v; }
static inline double lucid_row_from_f16(uint16_t h) { return lucid_half_to_float(h); }
#define LUCID_ROW_PLAIN(v) ((double)(v))

/* exp(y) for y <= 0 (finite or -inf): the double exponential of log_exp.h
 * without its overflow clamp; below -708 the weight is 0 (it is under 1e-307
 * of the row's largest, which is 1). */
LUCID_ROW_INLINE double lucid_row_exp_nonpositive(double y)
{
    double clamped = lucid_select_f64(y < -708.0, -708.0, y);
    return lucid_select_f64(y < -708.0, 0.0, lucid_exp_normal_f64(clamped));
}

/* Ask for the `bytes` bytes from `start` (the row's next block) while this
 * block is computed: the hardware prefetcher alone left memory idle during
 * the arithmetic. Prefetches never fault, so reading past the row is harmless. */
LUCID_ROW_INLINE void lucid_row_prefetch(const char *start, ptrdiff_t bytes)
{
    for (ptrdiff_t offset = 0; offset < bytes; offset += 64)
        __builtin_prefetch(start + offset);
}

/* exp(y) for float32 and float16 inputs, whose KL bound (1e-9 + 1e-7 KL)
 * needs weights to ~1e-9 only: a degree-7 polynomial (relative error below
 * 6e-11, fitted for 1 + r + r**2 Q(r) on [-log(2)/2, log(2)/2]) and a
 * one-part reduction, four fewer multiply-adds than the float64 exponential.
 * Exactly 1 at 0, so identical rows still give exactly 0. For c in
 * [-708, 709], where the result is normal; the callers clamp and say what
 * lies beyond. */
LUCID_ROW_INLINE double lucid_row_exp_narrow_core(double c)
{
    const double LOG2E = 0x1.71547652b82fep0, LN2 = 0x1.62e42fefa39efp-1, ROUND = 0x1.8p52;
    double shifted = c * LOG2E + ROUND;
    /* n sits in the low bits of shifted; shifting them up to the exponent
     * field drops ROUND's bits (its low 12 are 0), so adding gives v * 2**n
     * without a multiplication. */
    uint64_t n_exponent = lucid_bits_f64(shifted) << 52;
    double n = shifted - ROUND;
    double r = c - n * LN2;
    double q = 0x1.9f0759d858271p-13;
    q = q * r + 0x1.6d8d631035618p-10;
    q = q * r + 0x1.11127221a442fp-7;
    q = q * r + 0x1.55548d6b25b84p-5;
    q = q * r + 0x1.55555441e3607p-3;
    q = q * r + 0x1.0000003a44cc0p-1;
    double v = 1.0 + (r + r * r * q);
    return lucid_from_bits_f64(lucid_bits_f64(v) + n_exponent);
}

/* For arguments <= 0 (logits): 0 below -708, as lucid_row_exp_nonpositive. */
LUCID_ROW_INLINE double lucid_row_exp_nonpositive_narrow(double y)
{
    double c = lucid_select_f64(y < -708.0, -708.0, y);
    return lucid_select_f64(y < -708.0, 0.0, lucid_row_exp_narrow_core(c));
}

/* For any argument (log-probabilities): 0 below -708, +inf above 709. */
LUCID_ROW_INLINE double lucid_row_exp_narrow(double y)
{
    double c = lucid_select_f64(y < -708.0, -708.0, lucid_select_f64(y > 709.0, 709.0, y));
    double e = lucid_select_f64(y < -708.0, 0.0, lucid_row_exp_narrow_core(c));
    return lucid_select_f64(y > 709.0, INFINITY, e);
}

/* Each lane's largest value and where it first occurs (strict >: a lane's
 * elements come in column order), as the start of its group of lanes: a
 * double (exact below 2**53) broadcast once per group, so that tracking costs
 * a compare and two selects of one vector width per vector. */
#define LUCID_ROW_TRACK_MAX(v)                                                   \
    do {                                                                         \
        int larger_ = (v) > top[lane];                                           \
        top[lane] = lucid_select_f64(larger_, (v), top[lane]);                   \
        at[lane] = lucid_select_f64(larger_, group_, at[lane]);                  \
    } while (0)

/* The largest of the lanes' values, and in *index the first column holding
 * it: the smallest index among the lanes that hold it (numpy's argmax). */
LUCID_ROW_INLINE double lucid_row_fold_argmax(const double *top, const double *at,
                                              ptrdiff_t *index)
{
    double best = top[0], first = at[0];
    for (int lane = 1; lane < LUCID_ROW_LANES; lane++) {
        double index = at[lane] + lane;
        if (top[lane] > best || (top[lane] == best && index < first)) {
            best = top[lane];
            first = index;
        }
    }
    *index = (ptrdiff_t)first;
    return best;
}

/* Widen n values of one row into out, from src with byte stride `stride`,
 * handing each to LUCID_ROW_ON_VALUE(v), which each reader below defines
 * for itself. Contiguous rows are prefetched a block ahead. */
#define LUCID_ROW_READ_CASE(CODE, T, CONVERT)                                    \
    case CODE:                                                                   \
        if (stride == (ptrdiff_t)sizeof(T)) {                                    \
            const T *p = (const T *)src;                                         \
            lucid_row_prefetch(src + n * (ptrdiff_t)sizeof(T), n * (ptrdiff_t)sizeof(T)); \
            LUCID_ROW_LOOP(n,                                                    \
                double v = CONVERT(p[j]);                                        \
                out[j] = v;                                                      \
                LUCID_ROW_ON_VALUE(v));                                          \
        } else {                                                                 \
            LUCID_ROW_LOOP(n,                                                    \
                double v = CONVERT(*(const T *)(src + j * stride));              \
                out[j] = v;                                                      \
                LUCID_ROW_ON_VALUE(v));                                          \
        }                                                                        \
        break;

/* The widened values' maximum (NaNs skipped), and in *index its first column
 * in the block. */
#define LUCID_ROW_ON_VALUE(v) LUCID_ROW_TRACK_MAX(v)
LUCID_ROW_INLINE double lucid_row_load(const char *src, ptrdiff_t stride, int dtype,
                                       ptrdiff_t n, double *restrict out, ptrdiff_t *index)
{
    LUCID_ROW_LANES_INIT(top, -INFINITY);
    LUCID_ROW_LANES_INIT(at, 0.0);
    switch (dtype) {
    LUCID_ROW_NARROW_TYPES(LUCID_ROW_READ_CASE)
    LUCID_ROW_WIDE_TYPES(LUCID_ROW_READ_CASE)
    default:
        break;
    }
    return lucid_row_fold_argmax(top, at, index);
}
#undef LUCID_ROW_ON_VALUE

/* The values only: for rows whose maximum was seeded
 * (lucid_row_pair_io.seed_max) and whose argmax nobody asked for. */
#define LUCID_ROW_ON_VALUE(v) (void)(v)
LUCID_ROW_INLINE void lucid_row_widen(const char *src, ptrdiff_t stride, int dtype,
                                      ptrdiff_t n, double *restrict out)
{
    switch (dtype) {
    LUCID_ROW_NARROW_TYPES(LUCID_ROW_READ_CASE)
    LUCID_ROW_WIDE_TYPES(LUCID_ROW_READ_CASE)
    default:
        break;
    }
}
#undef LUCID_ROW_ON_VALUE

/* The largest of n values of a row (NaNs skipped; -inf if none), read in
 * place: lucid_row_pair_io.seed_max's first look, which needs neither the
 * widened values nor an argmax. */
#define LUCID_ROW_MAX_CASE(CODE, T, CONVERT)                                     \
    case CODE:                                                                   \
        if (stride == (ptrdiff_t)sizeof(T)) {                                    \
            const T *p = (const T *)src;                                         \
            LUCID_ROW_LOOP(n,                                                    \
                double v = CONVERT(p[j]);                                        \
                top[lane] = v > top[lane] ? v : top[lane]);                      \
        } else {                                                                 \
            LUCID_ROW_LOOP(n,                                                    \
                double v = CONVERT(*(const T *)(src + j * stride));              \
                top[lane] = v > top[lane] ? v : top[lane]);                      \
        }                                                                        \
        break;

LUCID_ROW_INLINE double lucid_row_max(const char *src, ptrdiff_t stride, int dtype, ptrdiff_t n)
{
    double best = -INFINITY;
    LUCID_ROW_LANES_INIT(top, -INFINITY);
    switch (dtype) {
    LUCID_ROW_NARROW_TYPES(LUCID_ROW_MAX_CASE)
    LUCID_ROW_WIDE_TYPES(LUCID_ROW_MAX_CASE)
    default:
        break;
    }
    for (int lane = 0; lane < LUCID_ROW_LANES; lane++)
        best = top[lane] > best ? top[lane] : best;
    return best;
}

/* One value of a row, widened (the label's class). */
LUCID_ROW_INLINE double lucid_row_value(const char *src, int dtype)
{
    switch (dtype) {
    case LUCID_ROW_F32: return *(const float *)src;
    case LUCID_ROW_F64: return *(const double *)src;
    case LUCID_ROW_F16: return lucid_half_to_float(*(const uint16_t *)src);
    case LUCID_ROW_I8: return *(const int8_t *)src;
    case LUCID_ROW_I16: return *(const int16_t *)src;
    case LUCID_ROW_I32: return *(const int32_t *)src;
    case LUCID_ROW_I64: return (double)*(const int64_t *)src;
    case LUCID_ROW_U8: return *(const uint8_t *)src;
    case LUCID_ROW_U16: return *(const uint16_t *)src;
    case LUCID_ROW_U32: return *(const uint32_t *)src;
    default: return (double)*(const uint64_t *)src;
    }
}

/* Load block [c0, c0 + n) of a side's row into buf and update its argmax
 * (numpy's rule: the first of equal maxima); returns the block's maximum.
 * `seeded`: the side's maximum is its row's already and no argmax is
 * wanted, so the block is only widened (and -inf returned: nothing to shift). */
LUCID_ROW_INLINE double lucid_row_load_block(const lucid_row_input *in, const char *row,
                                             ptrdiff_t c0, ptrdiff_t n, double *buf,
                                             lucid_row_side *side, int seeded)
{
    ptrdiff_t at = 0;
    double top = -INFINITY;
    if (seeded)
        lucid_row_widen(row + c0 * in->col_stride, in->col_stride, in->dtype, n, buf);
    else
        top = lucid_row_load(row + c0 * in->col_stride, in->col_stride, in->dtype, n, buf, &at);
    /* Defined scratch up to the next whole group (LUCID_ROW_PADDED_LOOP). */
    for (ptrdiff_t j = n; j % LUCID_ROW_LANES; j++)
        buf[j] = 0.0;
    if (top > side->best) {
        side->best = top;
        side->best_index = c0 + at;
    }
    return top;
}

/* Logits: on the first block, also make top the side's origin: values enter
 * the KL's sum as v - origin, so a row far from 0 (logits around 1e30) keeps
 * its differences exact instead of losing them against its size.
 * Make top the normaliser's shift if it is larger, rescaling the
 * running sums (sum, and `terms` of the students when this is the teacher)
 * to the new shift. Returns the factor applied (1 when nothing changed). */
LUCID_ROW_INLINE double lucid_row_shift_to(lucid_row_side *side, double top, double scale)
{
    double factor;
    if (side->max == -INFINITY)
        side->origin = top;
    if (!(top > side->max))
        return 1.0;
    /* exp(-inf) = 0 on the first block, when the sums are still 0. */
    factor = exp((side->max - top) * scale);
    side->sum *= factor;
    side->max = top;
    return factor;
}

/* The exponential's argument (v - shift) * scale: as written for float64
 * inputs; as one multiply-add for narrower ones, whose rounding of
 * shift * scale (~1e-16 of it) is far inside their bound. */
#define LUCID_ROW_EXACT_ARGUMENT(v) (((v) - shift) * scale)
#define LUCID_ROW_FUSED_ARGUMENT(v) ((v) * scale - shift_scaled)
/* The fused argument only while shift * scale is small: its rounding (half an
 * ulp of it) shifts every weight of the block alike and must stay far inside
 * the bound; huge logits or tiny temperatures take the exact argument. */
#define LUCID_ROW_FUSES(shift_scaled) (fabs(shift_scaled) <= 4096.0)

/* Teacher's block: weights w (P_j) and, in place of the values, L_j, or
 * nothing when both sides are logits (`raw`: the students then take the raw
 * values, which saves a pass of stores); EXP is the exponential for
 * arguments <= 0 (see lucid_row_exp_nonpositive). */
#define LUCID_ROW_TEACHER_LOGITS(EXP, ARGUMENT, STORE_L)                         \
    LUCID_ROW_PADDED_LOOP(n,                                                     \
        double e = EXP(ARGUMENT(v[j]));                                          \
        w[j] = e;                                                                \
        STORE_L;                                                                 \
        total[lane] += LUCID_ROW_KEEP(e))
#define LUCID_ROW_SCALED_L v[j] = (v[j] - origin) * alpha

LUCID_ROW_INLINE void lucid_row_teacher_block(int kind, int narrow, int raw, double *restrict v,
                                              double *restrict w, ptrdiff_t n, double scale,
                                              double alpha, lucid_row_side *side)
{
    const double shift = side->max, origin = side->origin, shift_scaled = shift * scale;
    LUCID_ROW_LANES_INIT(total, 0.0);
    if (kind == LUCID_ROW_LOGITS && narrow && raw && LUCID_ROW_FUSES(shift_scaled)) {
        LUCID_ROW_TEACHER_LOGITS(lucid_row_exp_nonpositive_narrow, LUCID_ROW_FUSED_ARGUMENT, );
    } else if (kind == LUCID_ROW_LOGITS && raw) {
        LUCID_ROW_TEACHER_LOGITS(lucid_row_exp_nonpositive, LUCID_ROW_EXACT_ARGUMENT, );
    } else if (kind == LUCID_ROW_LOGITS) {
        LUCID_ROW_TEACHER_LOGITS(lucid_row_exp_nonpositive, LUCID_ROW_EXACT_ARGUMENT,
                                 LUCID_ROW_SCALED_L);
    } else if (kind == LUCID_ROW_LOG_PROBS) {
        if (narrow)
            LUCID_ROW_PADDED_LOOP(n,
                double e = lucid_row_exp_narrow(v[j]);
                w[j] = e;
                total[lane] += LUCID_ROW_KEEP(e));
        else
            LUCID_ROW_PADDED_LOOP(n,
                double e = lucid_exp_f64(v[j]);
                w[j] = e;
                total[lane] += LUCID_ROW_KEEP(e));
    } else {
        /* log 0 = -inf and log of a negative = NaN make the sums non-finite,
         * which sends the row to the careful path. */
        LUCID_ROW_PADDED_LOOP(n,
            double p = v[j];
            w[j] = p;
            v[j] = lucid_log_f64(p);
            total[lane] += LUCID_ROW_KEEP(p));
    }
    side->sum += lucid_row_fold_sum(total);
}

/* A student's block against the teacher's (w, L): its normaliser sum
 * (logits) and sum of w_j (L_j - l_j), l_j = alpha (s_j - origin) or log s_j;
 * `raw` (both logits): L holds the teacher's values, L_j = t_j - t_origin. */
#define LUCID_ROW_STUDENT_LOGITS_LOOP(EXP, ARGUMENT, TERM, STORE)                \
    LUCID_ROW_PADDED_LOOP(n,                                                     \
        double e_ = EXP(ARGUMENT(s[j]));                                         \
        total[lane] += LUCID_ROW_KEEP(e_);                                       \
        terms[lane] += LUCID_ROW_KEEP(TERM);                                     \
        STORE)
/* With `keep` (not NULL), each exponential is also stored at keep[j] (whole
 * groups of lanes: up to LUCID_ROW_LANES - 1 past n), lucid_row_pair_io's
 * kept float64 exponentials. */
#define LUCID_ROW_STUDENT_LOGITS(EXP, ARGUMENT, TERM)                            \
    do {                                                                         \
        if (keep)                                                                \
            LUCID_ROW_STUDENT_LOGITS_LOOP(EXP, ARGUMENT, TERM, keep[j] = e_);    \
        else                                                                     \
            LUCID_ROW_STUDENT_LOGITS_LOOP(EXP, ARGUMENT, TERM, );                \
    } while (0)
/* Both logits: a class the teacher masks (t = -inf, so w = 0) adds 0, not
 * 0 * -inf, so masked vocabularies stay on this path; a NaN weight (NaN or
 * +inf logits) still poisons the sum. */
#define LUCID_ROW_RAW_DIFFERENCE ((L[j] - t_origin) - (s[j] - origin))
#define LUCID_ROW_RAW_TERM(DIFFERENCE) lucid_select_f64(w[j] == 0.0, 0.0, w[j] * (DIFFERENCE))
#define LUCID_ROW_SCALED_TERM(DIFFERENCE) (w[j] * (DIFFERENCE))
#define LUCID_ROW_SCALED_DIFFERENCE (L[j] - (s[j] - origin) * alpha)

LUCID_ROW_INLINE void lucid_row_student_block(int kind, int narrow, int raw,
                                              double *restrict keep,
                                              const double *restrict s,
                                              const double *restrict w,
                                              const double *restrict L, double t_origin,
                                              ptrdiff_t n, double scale, double alpha,
                                              lucid_row_side *side)
{
    const double shift = side->max, origin = side->origin, shift_scaled = shift * scale;
    LUCID_ROW_LANES_INIT(terms, 0.0);
    LUCID_ROW_LANES_INIT(total, 0.0);
    if (kind == LUCID_ROW_LOGITS && narrow && raw && LUCID_ROW_FUSES(shift_scaled)) {
        LUCID_ROW_STUDENT_LOGITS(lucid_row_exp_nonpositive_narrow, LUCID_ROW_FUSED_ARGUMENT,
                                 LUCID_ROW_RAW_TERM(LUCID_ROW_RAW_DIFFERENCE));
    } else if (kind == LUCID_ROW_LOGITS && raw) {
        LUCID_ROW_STUDENT_LOGITS(lucid_row_exp_nonpositive, LUCID_ROW_EXACT_ARGUMENT,
                                 LUCID_ROW_RAW_TERM(LUCID_ROW_RAW_DIFFERENCE));
    } else if (kind == LUCID_ROW_LOGITS) {
        LUCID_ROW_STUDENT_LOGITS(lucid_row_exp_nonpositive, LUCID_ROW_EXACT_ARGUMENT,
                                 LUCID_ROW_SCALED_TERM(LUCID_ROW_SCALED_DIFFERENCE));
    } else if (kind == LUCID_ROW_LOG_PROBS) {
        LUCID_ROW_PADDED_LOOP(n, terms[lane] += LUCID_ROW_KEEP(w[j] * (L[j] - s[j])));
    } else {
        LUCID_ROW_PADDED_LOOP(n,
            terms[lane] += LUCID_ROW_KEEP(w[j] * (L[j] - lucid_log_f64(s[j]))));
    }
    side->sum += lucid_row_fold_sum(total);
    side->terms += lucid_row_fold_sum(terms);
}

#endif /* LUCID_ROW_BLOCKS_H */
