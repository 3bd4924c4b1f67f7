/* The per-distribution (row) kernel: a teacher's row against one or several
 * students' rows, read once, in blocks that stay in L1.
 *
 * Layers, bottom to top:
 * 1. Block loops over LUCID_ROW_LANES double lanes (gcc vectorises the lane
 *    loop, as in kl_simd.h): widen a block of a row (any dtype, any column
 *    stride) into a double buffer while tracking its maximum and argmax; turn
 *    the teacher's block into weights P_j (and values L_j); add a student's
 *    block into its running sums.
 * 2. lucid_row_compare_body: one row, every student; an online normaliser
 *    (running maximum, running sums rescaled when it grows), so each input is
 *    read once whatever the row length. Rows holding a value the fast path
 *    does not cover (NaN, an infinity, a probability <= 0) leave a sum NaN
 *    or infinite and are computed again by lucid_row_careful, element by
 *    element with kl_div's special values.
 * 3. One entry point per SIMD level (gcc `target` attributes, as kl_simd.h),
 *    picked by the level _simd chose; _rowwise.pyx runs it over rows.
 *
 * The arithmetic, for logits (scale = 1 / temperature):
 *   P_j = exp((t_j - M_t) * scale) <= 1 with M_t the running maximum,
 *   Z_t = sum P_j, Q_j = exp((s_j - M_s) * scale), Z_s = sum Q_j,
 *   S = sum P_j ((t_j - o_t) - (s_j - o_s)) with o the first block's maximum
 *   of each side (rows far from 0 keep their differences), and
 *   KL = scale * (S / Z_t - ((M_t - o_t) - (M_s - o_s))) + log(Z_s / Z_t),
 *   clamped at 0.
 * Accuracy. The two sides are normalised separately, so the teacher's
 * weights are computed once per block and shared by every student; a weight
 * with relative error d changes the KL by at most about
 * d (2 KL + 4 sqrt(KL)). Every exponential is a double one: log_exp.h's (a
 * few ulp) for float64 inputs, a degree-7 one (d < 6e-11) for float32 and
 * narrower inputs, whose bound 1e-9 + 1e-7 KL that keeps 50 times clear of
 * (d ~ 1e-9 would do; float32 exponentials, d ~ 6e-8 on each side
 * independently, would not). Identical rows give the same P and Q bit for
 * bit, S = 0 and M_t = M_s: exactly 0. Log-probabilities (not renormalised)
 * use P_j = exp(t_j), Z_t = 1; probabilities P_j = p_j and L_j = log p_j.
 *
 * Each row is computed on one thread in a fixed order (blocks in column
 * order, lanes within a block, lanes folded pairwise), so it is bitwise the
 * same for any thread count and whichever rows and students share a call.
 */
#ifndef LUCID_ROW_KERNEL_H
#define LUCID_ROW_KERNEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_math.h"

/* Columns per block: three double buffers of this size (24 KiB) stay in L1. */
#define LUCID_ROW_BLOCK 1024
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

/* One input of shape (lead..., cols): where row index 0 starts, how its
 * elements are stored, and byte strides of the class and leading axes. */
typedef struct {
    const char *data;
    int dtype;
    ptrdiff_t col_stride;
    ptrdiff_t row_strides[LUCID_ROW_MAX_DIMS];
} lucid_row_input;

typedef struct {
    lucid_row_input teacher;
    const lucid_row_input *students;
    int n_students;
    int teacher_kind, student_kind;
    /* Rows are the C-order indices of lead_shape (an empty shape: one row). */
    int lead_ndim;
    ptrdiff_t lead_shape[LUCID_ROW_MAX_DIMS];
    ptrdiff_t cols;
    double scale;
    /* Every input float32, float16 or an integer of <= 16 bits: the cheaper
     * exponential is accurate enough (lucid_row_exp_nonpositive_narrow). */
    int narrow;
    /* Per row: the label, or ignore_index; NULL without labels. */
    const int64_t *labels;
    int64_t ignore_index;
    ptrdiff_t rows;
    /* Outputs, (n_students, rows) or (rows,); NULL when not wanted. */
    double *kl;
    int64_t *student_argmax;
    int64_t *teacher_argmax;
    double *student_logprob;
    double *teacher_logprob;
} lucid_row_job;

/* Running state of one side of a row. */
typedef struct {
    double max;         /* logits: the largest value so far (the normaliser's shift) */
    double origin;      /* logits: the first block's largest value, else 0 (see below) */
    double sum;         /* logits: sum of exp((v - max) * scale); teacher: sum of P */
    double terms;       /* students: sum of P_j (L_j - l_j) */
    double best;        /* the argmax's value */
    ptrdiff_t best_index;
} lucid_row_side;

/* Bytes of per-thread work space for a job with n_students students. */
static inline size_t lucid_row_work_bytes(int n_students)
{
    return 3 * LUCID_ROW_BLOCK * sizeof(double) +
           (size_t)(n_students + 1) * sizeof(lucid_row_side);
}

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

/* Widen n values of one row into out, from src with byte stride `stride`;
 * returns their maximum (NaNs skipped) and sets *index to its first column
 * in the block. Contiguous rows are prefetched a block ahead. */
#define LUCID_ROW_LOAD_CASE(CODE, T, CONVERT)                                    \
    case CODE:                                                                   \
        if (stride == (ptrdiff_t)sizeof(T)) {                                    \
            const T *p = (const T *)src;                                         \
            lucid_row_prefetch(src + n * (ptrdiff_t)sizeof(T), n * (ptrdiff_t)sizeof(T)); \
            LUCID_ROW_LOOP(n,                                                    \
                double v = CONVERT(p[j]);                                        \
                out[j] = v;                                                      \
                LUCID_ROW_TRACK_MAX(v));                                         \
        } else {                                                                 \
            LUCID_ROW_LOOP(n,                                                    \
                double v = CONVERT(*(const T *)(src + j * stride));              \
                out[j] = v;                                                      \
                LUCID_ROW_TRACK_MAX(v));                                         \
        }                                                                        \
        break;

LUCID_ROW_INLINE double lucid_row_load(const char *src, ptrdiff_t stride, int dtype,
                                       ptrdiff_t n, double *restrict out, ptrdiff_t *index)
{
    LUCID_ROW_LANES_INIT(top, -INFINITY);
    LUCID_ROW_LANES_INIT(at, 0.0);
    switch (dtype) {
    LUCID_ROW_LOAD_CASE(LUCID_ROW_F32, float, lucid_row_from_f32)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_F64, double, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_F16, uint16_t, lucid_row_from_f16)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_I8, int8_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_I16, int16_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_I32, int32_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_I64, int64_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_U8, uint8_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_U16, uint16_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_U32, uint32_t, LUCID_ROW_PLAIN)
    LUCID_ROW_LOAD_CASE(LUCID_ROW_U64, uint64_t, LUCID_ROW_PLAIN)
    default:
        break;
    }
    return lucid_row_fold_argmax(top, at, index);
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
 * (numpy's rule: the first of equal maxima); returns the block's maximum. */
LUCID_ROW_INLINE double lucid_row_load_block(const lucid_row_input *in, const char *row,
                                             ptrdiff_t c0, ptrdiff_t n, double *buf,
                                             lucid_row_side *side)
{
    ptrdiff_t at;
    double top = lucid_row_load(row + c0 * in->col_stride, in->col_stride, in->dtype, n, buf,
                                &at);
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
    if (kind == LUCID_ROW_LOGITS && narrow && raw) {
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
#define LUCID_ROW_STUDENT_LOGITS(EXP, ARGUMENT, TERM)                            \
    LUCID_ROW_PADDED_LOOP(n,                                                     \
        total[lane] += LUCID_ROW_KEEP(EXP(ARGUMENT(s[j])));                      \
        terms[lane] += LUCID_ROW_KEEP(TERM))
/* Both logits: a class the teacher masks (t = -inf, so w = 0) adds 0, not
 * 0 * -inf, so masked vocabularies stay on this path; a NaN weight (NaN or
 * +inf logits) still poisons the sum. */
#define LUCID_ROW_RAW_DIFFERENCE ((L[j] - t_origin) - (s[j] - origin))
#define LUCID_ROW_RAW_TERM(DIFFERENCE) lucid_select_f64(w[j] == 0.0, 0.0, w[j] * (DIFFERENCE))
#define LUCID_ROW_SCALED_TERM(DIFFERENCE) (w[j] * (DIFFERENCE))
#define LUCID_ROW_SCALED_DIFFERENCE (L[j] - (s[j] - origin) * alpha)

LUCID_ROW_INLINE void lucid_row_student_block(int kind, int narrow, int raw,
                                              const double *restrict s,
                                              const double *restrict w,
                                              const double *restrict L, double t_origin,
                                              ptrdiff_t n, double scale, double alpha,
                                              lucid_row_side *side)
{
    const double shift = side->max, origin = side->origin, shift_scaled = shift * scale;
    LUCID_ROW_LANES_INIT(terms, 0.0);
    LUCID_ROW_LANES_INIT(total, 0.0);
    if (kind == LUCID_ROW_LOGITS && narrow && raw) {
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

/* Byte offset of row r of an input: r unravelled over lead_shape in C order. */
LUCID_ROW_INLINE const char *lucid_row_start(const lucid_row_job *job,
                                             const lucid_row_input *in, ptrdiff_t r)
{
    ptrdiff_t offset = 0;
    for (int d = job->lead_ndim - 1; d >= 0; d--) {
        ptrdiff_t n = job->lead_shape[d];
        offset += (r % n) * in->row_strides[d];
        r /= n;
    }
    return in->data + offset;
}

static inline void lucid_row_side_reset(lucid_row_side *side)
{
    side->max = -INFINITY;
    side->origin = 0.0;
    side->sum = 0.0;
    side->terms = 0.0;
    side->best = -INFINITY;
    side->best_index = 0;
}

/* log-probability of class j of a row, from the side's normaliser (shift,
 * log_sum: logits only). */
static inline double lucid_row_log_prob(const lucid_row_input *in, const char *row, int kind,
                                        int64_t j, double shift, double log_sum, double scale)
{
    double v = lucid_row_value(row + j * in->col_stride, in->dtype);
    if (kind == LUCID_ROW_LOGITS)
        return (v - shift) * scale - log_sum;
    return kind == LUCID_ROW_LOG_PROBS ? v : log(v);
}

/* Normaliser of a row of logits the careful way: shift = the largest value
 * (NaNs skipped), returns log sum exp((v - shift) * scale) (NaN for a row
 * holding NaN or +inf, or only -inf, as log_softmax). */
static double lucid_row_careful_normaliser(const lucid_row_input *in, const char *row,
                                           ptrdiff_t cols, double scale, double *shift)
{
    double top = -INFINITY, total = 0.0;
    for (ptrdiff_t j = 0; j < cols; j++) {
        double v = lucid_row_value(row + j * in->col_stride, in->dtype);
        top = v > top ? v : top;
    }
    for (ptrdiff_t j = 0; j < cols; j++) {
        double v = lucid_row_value(row + j * in->col_stride, in->dtype);
        total += exp((v - top) * scale);
    }
    *shift = top;
    return log(total);
}

/* numpy's argmax of a row: the first NaN if any, else the first maximum. */
static ptrdiff_t lucid_row_careful_argmax(const lucid_row_input *in, const char *row,
                                          ptrdiff_t cols)
{
    ptrdiff_t best_index = 0;
    double best = cols ? lucid_row_value(row, in->dtype) : 0.0;
    for (ptrdiff_t j = 0; j < cols; j++) {
        double v = lucid_row_value(row + j * in->col_stride, in->dtype);
        if (v != v)
            return j;
        if (v > best) {
            best = v;
            best_index = j;
        }
    }
    return best_index;
}

/* KL of row r the careful way, for rows with special values: every
 * log-probability in double, then kl_div's per-element function (0 log 0 = 0,
 * q = 0 where p > 0 gives +inf, NaN for values outside the domain). Also the
 * argmax and the label's log-probabilities. */
static void lucid_row_careful(const lucid_row_job *job, ptrdiff_t r, int64_t label)
{
    const lucid_row_input *t_in = &job->teacher;
    const char *t_row = lucid_row_start(job, t_in, r);
    double t_shift = 0.0, t_log_sum = 0.0, scale = job->scale;
    int t_kind = job->teacher_kind, s_kind = job->student_kind;
    if (t_kind == LUCID_ROW_LOGITS)
        t_log_sum = lucid_row_careful_normaliser(t_in, t_row, job->cols, scale, &t_shift);
    if (job->teacher_argmax)
        job->teacher_argmax[r] = lucid_row_careful_argmax(t_in, t_row, job->cols);
    if (job->teacher_logprob)
        job->teacher_logprob[r] = label == job->ignore_index ? NAN :
            lucid_row_log_prob(t_in, t_row, t_kind, label, t_shift, t_log_sum, scale);
    for (int k = 0; k < job->n_students; k++) {
        const lucid_row_input *s_in = &job->students[k];
        const char *s_row = lucid_row_start(job, s_in, r);
        double s_shift = 0.0, s_log_sum = 0.0, total = 0.0;
        ptrdiff_t out = (ptrdiff_t)k * job->rows + r;
        if (s_kind == LUCID_ROW_LOGITS)
            s_log_sum = lucid_row_careful_normaliser(s_in, s_row, job->cols, scale, &s_shift);
        for (ptrdiff_t j = 0; j < job->cols; j++) {
            double x = lucid_row_log_prob(s_in, s_row, s_kind, j, s_shift, s_log_sum, scale);
            if (t_kind == LUCID_ROW_PROBS)
                total += lucid_kl_elem_f64(x, lucid_row_value(t_row + j * t_in->col_stride,
                                                              t_in->dtype));
            else
                total += lucid_kl_elem_log_target_f64(
                    x, lucid_row_log_prob(t_in, t_row, t_kind, j, t_shift, t_log_sum, scale));
        }
        /* From logits the KL is >= 0; rounding must not make it negative. */
        if (t_kind == LUCID_ROW_LOGITS && s_kind == LUCID_ROW_LOGITS && total < 0)
            total = 0.0;
        job->kl[out] = total;
        if (job->student_argmax)
            job->student_argmax[out] = lucid_row_careful_argmax(s_in, s_row, job->cols);
        if (job->student_logprob)
            job->student_logprob[out] = label == job->ignore_index ? NAN :
                lucid_row_log_prob(s_in, s_row, s_kind, label, s_shift, s_log_sum, scale);
    }
}

/* The KL of a student from the finished sums (see the top of the file). */
LUCID_ROW_INLINE double lucid_row_finish_kl(const lucid_row_job *job, const lucid_row_side *t,
                                            const lucid_row_side *s)
{
    double scale = job->scale;
    int t_logits = job->teacher_kind == LUCID_ROW_LOGITS;
    int s_logits = job->student_kind == LUCID_ROW_LOGITS;
    double kl;
    if (t_logits && s_logits) {
        kl = scale * (s->terms / t->sum - ((t->max - t->origin) - (s->max - s->origin))) +
             log(s->sum / t->sum);
        return kl < 0 ? 0.0 : kl;
    }
    if (t_logits)
        return s->terms / t->sum - ((t->max - t->origin) * scale + log(t->sum));
    /* Probabilities or log-probabilities as given (not renormalised): the
     * student's log-normaliser weighs with the teacher's total sum P_j. */
    return s->terms + (s_logits ? ((s->max - s->origin) * scale + log(s->sum)) * t->sum : 0.0);
}

/* Everything of row r for every student; work: lucid_row_work_bytes(). */
LUCID_ROW_INLINE void lucid_row_compare_body(const lucid_row_job *job, ptrdiff_t r,
                                             char *work)
{
    double *t_buf = (double *)work;
    double *w_buf = t_buf + LUCID_ROW_BLOCK;
    double *s_buf = w_buf + LUCID_ROW_BLOCK;
    lucid_row_side *sides = (lucid_row_side *)(s_buf + LUCID_ROW_BLOCK);
    lucid_row_side *t = &sides[0];
    const lucid_row_input *t_in = &job->teacher;
    const char *t_row = lucid_row_start(job, t_in, r);
    int t_kind = job->teacher_kind, s_kind = job->student_kind, k;
    int both_logits = t_kind == LUCID_ROW_LOGITS && s_kind == LUCID_ROW_LOGITS;
    /* Both logits: L_j = t_j and l_j = s_j, the scale applied to the sum. */
    double scale = job->scale, t_alpha = both_logits ? 1.0 : scale;
    double s_alpha = both_logits ? 1.0 : scale;
    double check;
    int64_t label = job->labels ? job->labels[r] : job->ignore_index;
    ptrdiff_t c0, n, cols = job->cols;
    lucid_row_side_reset(t);
    for (k = 0; k < job->n_students; k++)
        lucid_row_side_reset(&sides[k + 1]);
    for (c0 = 0; c0 < cols; c0 += n) {
        n = cols - c0 < LUCID_ROW_BLOCK ? cols - c0 : LUCID_ROW_BLOCK;
        double top = lucid_row_load_block(t_in, t_row, c0, n, t_buf, t);
        if (t_kind == LUCID_ROW_LOGITS) {
            double factor = lucid_row_shift_to(t, top, scale);
            if (factor != 1.0)
                for (k = 0; k < job->n_students; k++)
                    sides[k + 1].terms *= factor;
        }
        lucid_row_teacher_block(t_kind, job->narrow, both_logits, t_buf, w_buf, n, scale, t_alpha, t);
        for (k = 0; k < job->n_students; k++) {
            lucid_row_side *s = &sides[k + 1];
            const lucid_row_input *s_in = &job->students[k];
            top = lucid_row_load_block(s_in, lucid_row_start(job, s_in, r), c0, n, s_buf, s);
            if (s_kind == LUCID_ROW_LOGITS)
                lucid_row_shift_to(s, top, scale);
            lucid_row_student_block(s_kind, job->narrow, both_logits, s_buf, w_buf, t_buf,
                                    t->origin, n, scale, s_alpha, s);
        }
    }
    /* A NaN, an infinity or a probability <= 0 anywhere in the row leaves a
     * sum NaN or infinite (0 * -inf for a class ruled out, inf - inf for +inf
     * logits): then the row is computed again the careful way. */
    check = t->sum * 0.0;
    for (k = 0; k < job->n_students; k++)
        check += sides[k + 1].sum * 0.0 + sides[k + 1].terms * 0.0;
    if (check != 0.0 || cols == 0) {
        lucid_row_careful(job, r, label);
        return;
    }
    if (job->teacher_argmax)
        job->teacher_argmax[r] = t->best_index;
    if (job->teacher_logprob)
        job->teacher_logprob[r] = label == job->ignore_index ? NAN :
            lucid_row_log_prob(t_in, t_row, t_kind, label, t->max, log(t->sum), scale);
    for (k = 0; k < job->n_students; k++) {
        const lucid_row_side *s = &sides[k + 1];
        ptrdiff_t out = (ptrdiff_t)k * job->rows + r;
        job->kl[out] = lucid_row_finish_kl(job, t, s);
        if (job->student_argmax)
            job->student_argmax[out] = s->best_index;
        if (job->student_logprob)
            job->student_logprob[out] = label == job->ignore_index ? NAN :
                lucid_row_log_prob(&job->students[k],
                                        lucid_row_start(job, &job->students[k], r), s_kind,
                                        label, s->max, log(s->sum), scale);
    }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define LUCID_ROW_X86_DISPATCH 1
#else
#define LUCID_ROW_X86_DISPATCH 0
#endif

#define LUCID_ROW_DEFINE_LEVEL(LEVEL, TARGET)                                    \
TARGET static void lucid_row_compare_##LEVEL(const lucid_row_job *job, ptrdiff_t r, \
                                              char *work)                        \
{                                                                                \
    lucid_row_compare_body(job, r, work);                                        \
}

LUCID_ROW_DEFINE_LEVEL(baseline, __attribute__((flatten)))
#if LUCID_ROW_X86_DISPATCH
#if defined(__clang__)
#define LUCID_ROW_AVX512_TARGET "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"
#else
#define LUCID_ROW_AVX512_TARGET \
    "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,prefer-vector-width=512"
#endif
LUCID_ROW_DEFINE_LEVEL(avx2, __attribute__((flatten, target("avx2,fma"))))
LUCID_ROW_DEFINE_LEVEL(avx512, __attribute__((flatten, target(LUCID_ROW_AVX512_TARGET))))
#endif

typedef void (*lucid_row_compare_fn)(const lucid_row_job *, ptrdiff_t, char *);

/* The row function of SIMD level `level` (0 baseline, 1 AVX2, 2 AVX-512, as
 * _simd.SIMD_LEVELS); the caller passes a level _simd accepted. */
static lucid_row_compare_fn lucid_row_compare_for(int level)
{
#if LUCID_ROW_X86_DISPATCH
    if (level == 2)
        return lucid_row_compare_avx512;
    if (level == 1)
        return lucid_row_compare_avx2;
#endif
    (void)level;
    return lucid_row_compare_baseline;
}

#endif /* LUCID_ROW_KERNEL_H */
