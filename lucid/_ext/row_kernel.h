/* The per-distribution (row) kernel: a teacher's row against one or several
 * students' rows, read once, in blocks that stay in L1.
 *
 * Layers, bottom to top:
 * 1. row_blocks.h: block loops over LUCID_ROW_LANES double lanes (gcc
 *    vectorises the lane loop, as in kl_simd.h): widen a block of a row (any
 *    dtype, any column stride) into a double buffer while tracking its
 *    maximum and argmax; turn the teacher's block into weights P_j (and
 *    values L_j); add a student's block into its running sums.
 * 2. lucid_row_compare_body: one row, every student; an online normaliser
 *    (running maximum, running sums rescaled when it grows), so each input is
 *    read once whatever the row length. Rows holding a value the fast path
 *    does not cover (NaN, an infinity, a probability <= 0) leave a sum NaN
 *    or infinite and are computed again by lucid_row_careful, element by
 *    element with kl_div's special values.
 *    A job of one student, both sides logits, runs both sides of a block in
 *    one loop (row_avx512.h's lucid_row_pair_logits_f32), with the same
 *    arithmetic as the teacher's and the students' loops.
 * 3. One entry point per SIMD level (gcc `target` attributes, as kl_simd.h),
 *    picked by the level _simd chose; _rowwise.pyx runs it over rows. A
 *    second one, lucid_row_pair_for, serves a caller holding one pair of rows
 *    (the distillation loss, _distill.pyx): it can find both maxima first
 *    (rows in cache), keep the exponentials as float32 for a gradient, and
 *    prefetch the next pair (lucid_row_pair_io).
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
#include <string.h>

#include "row_blocks.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define LUCID_ROW_X86_DISPATCH 1
#include "row_avx512.h"
#else
#define LUCID_ROW_X86_DISPATCH 0
#endif

/* A call: the inputs (row_blocks.h's lucid_row_input), the rows, the
 * options and where the outputs go. */
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

enum { LUCID_ROW_KEPT_NONE = 0, LUCID_ROW_KEPT_F32 = 1, LUCID_ROW_KEPT_F64 = 2 };

/* What a caller holding one pair of rows asks of lucid_row_pair_for's
 * function, and its answers (the distillation loss, _distill.pyx: one
 * student, both sides logits, rows contiguous float32 or float64). */
typedef struct {
    /* In: find both rows' maxima first (for rows already in cache), so that
     * every block is shifted by the row's maximum and a kept exponential is
     * exp((v_j - max) * scale) itself. */
    int seed_max;
    /* In: where to keep each exponential exp((v_j - max) * scale) (needs
     * seed_max), or NULL: as float32 on the AVX-512 loops (float32 rows),
     * as float64 (cols + LUCID_ROW_LANES of them) on the generic ones. */
    float *keep_teacher, *keep_student;
    double *keep_teacher_f64, *keep_student_f64;
    /* In: rows to bring into L2 meanwhile (the next pair), or NULL. */
    const char *ahead_teacher, *ahead_student;
    /* Out, teacher's then student's: log p_j = (v_j - shift) * scale - log_sum
     * (computed as v_j * scale - shift * scale). */
    double shift[2], log_sum[2];
    /* Out: which keep_ pointers (those given) hold the row: a LUCID_ROW_KEPT_ value. */
    int kept;
    /* The kernel's own: each seeded row's LUCID_ROW_FAST_LOOP mode (-1: find
     * it block by block). */
    int mode[2];
} lucid_row_pair_io;

/* Bytes of per-thread work space for a job with n_students students. */
static inline size_t lucid_row_work_bytes(int n_students)
{
    return 3 * LUCID_ROW_BLOCK * sizeof(double) +
           (size_t)(n_students + 1) * sizeof(lucid_row_side) +
           (size_t)n_students * sizeof(const char *);
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

/* Whether row_avx512.h's loops take the job: both sides logits or both
 * log-probabilities, every input float32 or a narrower type whose values
 * float32 holds exactly (job->narrow). */
static inline int lucid_row_fast_kinds(const lucid_row_job *job)
{
    int k = job->teacher_kind;
    return job->narrow && k == job->student_kind && k != LUCID_ROW_PROBS;
}

/* Block [c0, c0 + n) of a row as contiguous float32: the row itself when it
 * is contiguous float32, else its values copied into `scratch`, so that every
 * layout and narrow storage type gives the bits of contiguous float32. */
#define LUCID_ROW_STAGE_CASE(CODE, T, CONVERT)                                   \
    case CODE:                                                                   \
        for (ptrdiff_t j = 0; j < n; j++)                                        \
            scratch[j] = (float)CONVERT(*(const T *)(src + j * stride));         \
        break;
static inline const float *lucid_row_block_f32(const lucid_row_input *in, const char *row,
                                               ptrdiff_t c0, ptrdiff_t n, float *scratch)
{
    ptrdiff_t stride = in->col_stride;
    const char *src = row + c0 * stride;
    if (in->dtype == LUCID_ROW_F32 && stride == (ptrdiff_t)sizeof(float))
        return (const float *)src;
    switch (in->dtype) {
    LUCID_ROW_NARROW_TYPES(LUCID_ROW_STAGE_CASE)
    default: /* not narrow: lucid_row_fast_kinds keeps such jobs away */
        break;
    }
    return scratch;
}

#if LUCID_ROW_X86_DISPATCH
/* The largest value of a side's block (row_avx512.h's range), raising its
 * argmax; *mode: the block's LUCID_ROW_FAST_LOOP mode once the side's
 * normaliser is shifted to it; the factor the shift applied. */
LUCID_ROW_AVX512_INLINE double lucid_row_fast_side(const float *row, ptrdiff_t c0, ptrdiff_t n,
                                               double scale, lucid_row_side *side, int *mode)
{
    double bottom, factor;
    ptrdiff_t at = 0;
    double top = lucid_row_range_f32(row, n, side->best, &bottom, &at);
    if (top > side->best) {
        side->best = top;
        side->best_index = c0 + at;
    }
    factor = lucid_row_shift_to(side, top, scale);
    *mode = lucid_row_fast_mode(bottom, side->max, scale);
    return factor;
}

/* Block [c0, c0 + n) of a job of one student, both logits, by the single
 * loop of both sides (lucid_row_pair_logits_f32); 0 (nothing done) when a
 * side needs mode 2. `scratch` stages a block that is not contiguous float32
 * (2 * LUCID_ROW_BLOCK floats). */
LUCID_ROW_AVX512_INLINE int lucid_row_fast_pair(const lucid_row_job *job, const char *t_row,
                                            const char *s_row, ptrdiff_t c0, ptrdiff_t n,
                                            float *scratch, lucid_row_side *sides,
                                            lucid_row_pair_io *io)
{
    lucid_row_side *t = &sides[0], *s = &sides[1];
    double scale = job->scale;
    int t_mode, s_mode;
    const float *t_block = lucid_row_block_f32(&job->teacher, t_row, c0, n, scratch);
    const float *s_block = lucid_row_block_f32(&job->students[0], s_row, c0, n,
                                               scratch + LUCID_ROW_BLOCK);
    if (io && io->mode[0] >= 0 && io->mode[1] >= 0) {
        /* Seeded rows whose argmaxes nobody asked for: the shifts are final,
         * and the modes the rows' (lucid_row_seed). */
        t_mode = io->mode[0];
        s_mode = io->mode[1];
    } else {
        /* The sides' shifts are the same as the two-loop path's, whatever follows. */
        s->terms *= lucid_row_fast_side(t_block, c0, n, scale, t, &t_mode);
        lucid_row_fast_side(s_block, c0, n, scale, s, &s_mode);
    }
    if (t_mode == 2 || s_mode == 2)
        return 0;
    float *keep_t = io && io->keep_teacher ? io->keep_teacher + c0 : NULL;
    float *keep_s = io && io->keep_student ? io->keep_student + c0 : NULL;
    const float *ahead_t = io && io->ahead_teacher ? (const float *)io->ahead_teacher + c0
                                                   : t_block;
    const float *ahead_s = io && io->ahead_student ? (const float *)io->ahead_student + c0
                                                   : s_block;
    s->terms += lucid_row_pair_logits_f32(t_block, s_block, n, scale, t, s,
                                          t_mode | s_mode, keep_t, keep_s, ahead_t, ahead_s,
                                          &t->sum, &s->sum);
    return 1;
}

/* Block [c0, c0 + n) of row r, every side, by row_avx512.h's loops: the
 * same sums as the generic block functions. t_buf receives the teacher's
 * d_j, w_buf its weights; scratch stages a block that is not contiguous
 * float32. */
LUCID_ROW_AVX512_FN void lucid_row_fast_block(const lucid_row_job *job, const char *t_row,
                                              const char *const *s_rows, ptrdiff_t c0,
                                              ptrdiff_t n, double *t_buf, double *w_buf,
                                              float *scratch, lucid_row_side *sides,
                                              lucid_row_pair_io *io)
{
    if (job->n_students == 1 && job->teacher_kind == LUCID_ROW_LOGITS &&
        lucid_row_fast_pair(job, t_row, s_rows[0], c0, n, (float *)w_buf, sides, io))
        return;
    if (io)
        io->kept = LUCID_ROW_KEPT_NONE;
    lucid_row_side *t = &sides[0];
    double scale = job->scale, bottom, top;
    int logits = job->teacher_kind == LUCID_ROW_LOGITS;
    const float *row = lucid_row_block_f32(&job->teacher, t_row, c0, n, scratch);
    ptrdiff_t at = 0;
    top = lucid_row_range_f32(row, n, t->best, &bottom, &at);
    if (top > t->best) {
        t->best = top;
        t->best_index = c0 + at;
    }
    if (logits) {
        double factor = lucid_row_shift_to(t, top, scale);
        if (factor != 1.0)
            for (int k = 0; k < job->n_students; k++)
                sides[k + 1].terms *= factor;
        t->sum += lucid_row_teacher_logits_f32(row, n, scale, t->max, t->origin,
                                               lucid_row_fast_mode(bottom, t->max, scale),
                                               w_buf, t_buf);
    } else {
        int clamp = !(bottom >= LUCID_ROW_FAST_EXP_MIN && top <= LUCID_ROW_FAST_EXP_MAX);
        t->sum += lucid_row_teacher_log_probs_f32(row, n, clamp, w_buf, t_buf);
    }
    for (int k = 0; k < job->n_students; k++) {
        lucid_row_side *s = &sides[k + 1];
        row = lucid_row_block_f32(&job->students[k], s_rows[k], c0, n, scratch);
        top = lucid_row_range_f32(row, n, s->best, &bottom, &at);
        if (top > s->best) {
            s->best = top;
            s->best_index = c0 + at;
        }
        if (logits) {
            lucid_row_shift_to(s, top, scale);
            s->terms += lucid_row_student_logits_f32(row, n, scale, s->max, s->origin,
                                                     lucid_row_fast_mode(bottom, s->max, scale),
                                                     w_buf, t_buf, &s->sum);
        } else {
            s->terms += lucid_row_student_log_probs_f32(row, n, w_buf, t_buf);
        }
    }
}
#endif

/* A side's row maximum, NaNs skipped, for lucid_row_pair_io.seed_max: the
 * row's normaliser is shifted to it from the first block on (and so the
 * origin is it too). buf: a block of doubles of scratch. Returns the row's
 * LUCID_ROW_FAST_LOOP mode on the fast path, else -1. */
LUCID_ROW_INLINE int lucid_row_seed(const lucid_row_input *in, const char *row, ptrdiff_t cols,
                                    double scale, int fast, double *buf, lucid_row_side *side)
{
    double top = -INFINITY, bottom = INFINITY;
    ptrdiff_t c0, n, at;
    int mode = -1;
#if LUCID_ROW_X86_DISPATCH
    if (fast)
        for (c0 = 0; c0 < cols; c0 += n) {
            double low;
            n = cols - c0 < LUCID_ROW_BLOCK ? cols - c0 : LUCID_ROW_BLOCK;
            double high = lucid_row_range_f32(
                lucid_row_block_f32(in, row, c0, n, (float *)buf), n, INFINITY, &low, &at);
            top = high > top ? high : top;
            bottom = low < bottom ? low : bottom;
        }
#endif
    if (!fast)
        top = lucid_row_max(row, in->col_stride, in->dtype, cols);
    /* A row of -inf (or NaN) keeps the unseeded start: its sums go NaN. */
    if (top > -INFINITY) {
        side->max = top;
        side->origin = top;
#if LUCID_ROW_X86_DISPATCH
        if (fast)
            mode = lucid_row_fast_mode(bottom, top, scale);
#endif
    }
    return mode;
}

/* A pair's normalisers into io, from the sums or (a row sent to the careful
 * path) the careful way. */
static void lucid_row_pair_answer(const lucid_row_job *job, const lucid_row_side *sides,
                                  const char *t_row, const char *s_row, int careful,
                                  lucid_row_pair_io *io)
{
    const lucid_row_input *in[2] = {&job->teacher, &job->students[0]};
    const char *rows[2] = {t_row, s_row};
    for (int side = 0; side < 2; side++) {
        if (careful) {
            io->log_sum[side] = lucid_row_careful_normaliser(in[side], rows[side], job->cols,
                                                             job->scale, &io->shift[side]);
        } else {
            io->shift[side] = sides[side].max;
            io->log_sum[side] = log(sides[side].sum);
        }
    }
    if (careful)
        io->kept = LUCID_ROW_KEPT_NONE;
}

/* Everything of row r for every student; work: lucid_row_work_bytes(); io:
 * NULL, or a pair's questions and answers (lucid_row_pair_io). */
LUCID_ROW_INLINE void lucid_row_compare_body(const lucid_row_job *job, ptrdiff_t r,
                                             char *work, int avx512, lucid_row_pair_io *io)
{
    double *t_buf = (double *)work;
    double *w_buf = t_buf + LUCID_ROW_BLOCK;
    double *s_buf = w_buf + LUCID_ROW_BLOCK;
    lucid_row_side *sides = (lucid_row_side *)(s_buf + LUCID_ROW_BLOCK);
    /* Each student's row start, found once per row (an unravel is a division
     * per leading axis). */
    const char **s_rows = (const char **)(sides + job->n_students + 1);
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
    for (k = 0; k < job->n_students; k++) {
        lucid_row_side_reset(&sides[k + 1]);
        s_rows[k] = lucid_row_start(job, &job->students[k], r);
    }
    int fast = avx512 && lucid_row_fast_kinds(job);
    if (io) {
        io->kept = !io->seed_max || job->n_students != 1 || !both_logits ? LUCID_ROW_KEPT_NONE
                 : fast ? LUCID_ROW_KEPT_F32 : LUCID_ROW_KEPT_F64;
        io->mode[0] = io->mode[1] = -1;
        if (io->seed_max) {
            int t_mode = lucid_row_seed(t_in, t_row, cols, scale, fast, t_buf, t);
            int s_mode = lucid_row_seed(&job->students[0], s_rows[0], cols, scale, fast, t_buf,
                                        &sides[1]);
            /* Without argmaxes to find, no block needs looking at first. */
            if (!job->teacher_argmax && !job->student_argmax) {
                io->mode[0] = t_mode;
                io->mode[1] = s_mode;
            }
        }
    }
    /* Seeded rows whose argmaxes nobody asked for: the generic blocks are
     * only widened, their maxima known already. */
    int seeded = io && io->seed_max && !job->teacher_argmax && !job->student_argmax;
    for (c0 = 0; c0 < cols; c0 += n) {
        n = cols - c0 < LUCID_ROW_BLOCK ? cols - c0 : LUCID_ROW_BLOCK;
#if LUCID_ROW_X86_DISPATCH
        if (fast) {
            lucid_row_fast_block(job, t_row, s_rows, c0, n, t_buf, w_buf, (float *)s_buf, sides,
                                 io);
            continue;
        }
#endif
        double top = lucid_row_load_block(t_in, t_row, c0, n, t_buf, t, seeded);
        if (t_kind == LUCID_ROW_LOGITS) {
            double factor = lucid_row_shift_to(t, top, scale);
            if (factor != 1.0)
                for (k = 0; k < job->n_students; k++)
                    sides[k + 1].terms *= factor;
        }
        lucid_row_teacher_block(t_kind, job->narrow, both_logits, t_buf, w_buf, n, scale, t_alpha, t);
        if (io && io->keep_teacher_f64)
            memcpy(io->keep_teacher_f64 + c0, w_buf, n * sizeof(double));
        for (k = 0; k < job->n_students; k++) {
            lucid_row_side *s = &sides[k + 1];
            const lucid_row_input *s_in = &job->students[k];
            double *keep = io && io->keep_student_f64 ? io->keep_student_f64 + c0 : NULL;
            top = lucid_row_load_block(s_in, s_rows[k], c0, n, s_buf, s, seeded);
            if (s_kind == LUCID_ROW_LOGITS)
                lucid_row_shift_to(s, top, scale);
            lucid_row_student_block(s_kind, job->narrow, both_logits, keep, s_buf, w_buf, t_buf,
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
        if (io)
            lucid_row_pair_answer(job, sides, t_row, s_rows[0], 1, io);
        return;
    }
    if (io)
        lucid_row_pair_answer(job, sides, t_row, s_rows[0], 0, io);
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
                lucid_row_log_prob(&job->students[k], s_rows[k], s_kind, label, s->max,
                                   log(s->sum), scale);
    }
}

#define LUCID_ROW_DEFINE_LEVEL(LEVEL, TARGET, AVX512)                            \
TARGET static void lucid_row_compare_##LEVEL(const lucid_row_job *job, ptrdiff_t r, \
                                              char *work)                        \
{                                                                                \
    lucid_row_compare_body(job, r, work, AVX512, NULL);                          \
}                                                                                \
TARGET static void lucid_row_pair_##LEVEL(const lucid_row_job *job, char *work,  \
                                           lucid_row_pair_io *io)                \
{                                                                                \
    lucid_row_compare_body(job, 0, work, AVX512, io);                            \
}

LUCID_ROW_DEFINE_LEVEL(baseline, __attribute__((flatten)), 0)
#if LUCID_ROW_X86_DISPATCH
LUCID_ROW_DEFINE_LEVEL(avx2, __attribute__((flatten, target("avx2,fma"))), 0)
LUCID_ROW_DEFINE_LEVEL(avx512, __attribute__((flatten, target(LUCID_AVX512_TARGET))), 1)
#endif

typedef void (*lucid_row_compare_fn)(const lucid_row_job *, ptrdiff_t, char *);

/* The row function of SIMD level `level` (0 baseline, 1 AVX2, 2 AVX-512, as
 * _simd.SIMD_LEVELS); the caller passes a level _simd accepted. */
__attribute__((unused)) static lucid_row_compare_fn lucid_row_compare_for(int level)
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

typedef void (*lucid_row_pair_fn)(const lucid_row_job *, char *, lucid_row_pair_io *);

/* The function of a job of one pair of rows (row 0 of the job: its inputs'
 * `data` point at the rows, lead_ndim 0), at SIMD level `level` as
 * lucid_row_compare_for. The KL goes to job->kl[0]; io says what else. */
__attribute__((unused)) static lucid_row_pair_fn lucid_row_pair_for(int level)
{
#if LUCID_ROW_X86_DISPATCH
    if (level == 2)
        return lucid_row_pair_avx512;
    if (level == 1)
        return lucid_row_pair_avx2;
#endif
    (void)level;
    return lucid_row_pair_baseline;
}

#endif /* LUCID_ROW_KERNEL_H */
