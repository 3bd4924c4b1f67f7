/* The table of KL run loops one SIMD level provides (kl_simd.h fills it in).
 *
 * A run is a contiguous stretch of elements in the compute precision; the
 * Cython block loops (_kl_div.pyx), the table's one user, call a run per
 * block. This header only declares the table so that modules which call
 * through it do not compile the loops themselves: only _simd.pyx includes
 * kl_simd.h. The loops the benchmarks and tests call, and nothing else, have
 * their own table (probe_runs.h).
 */
#ifndef LUCID_KL_RUNS_H
#define LUCID_KL_RUNS_H

#include <stddef.h>

enum {
    LUCID_SIMD_BASELINE = 0, /* what every x86-64 (SSE2) or other CPU runs */
    LUCID_SIMD_AVX2 = 1,     /* AVX2 + FMA */
    LUCID_SIMD_AVX512 = 2,   /* AVX-512 F, DQ, BW, VL + FMA */
    LUCID_SIMD_LEVELS = 3
};

typedef struct lucid_kl_runs {
    /* Sum of the losses of a run, in double lanes (float losses widened as added). */
    double (*sum_f32)(const float *x, const float *t, ptrdiff_t n, int log_target);
    double (*sum_f64)(const double *x, const double *t, ptrdiff_t n, int log_target);
    /* Per-element losses of a run. */
    void (*elementwise_f32)(const float *x, const float *t, float *out, ptrdiff_t n,
                            int log_target);
    void (*elementwise_f64)(const double *x, const double *t, double *out, ptrdiff_t n,
                            int log_target);
    /* d loss / d x (or d target) times g; g_scalar: g[0] applies to every element. */
    void (*grad_f32)(const float *x, const float *t, const float *g, int g_scalar, float *out,
                     ptrdiff_t n, int log_target, int wrt_target);
    void (*grad_f64)(const double *x, const double *t, const double *g, int g_scalar,
                     double *out, ptrdiff_t n, int log_target, int wrt_target);
    /* The sum of the losses as sum_* computes it (the same bits), and in
     * sums[0], sums[1] the sums of p (exp(t) with log_target) and of exp(x). */
    double (*stats_f32)(const float *x, const float *t, ptrdiff_t n, int log_target,
                        double *sums);
    double (*stats_f64)(const double *x, const double *t, ptrdiff_t n, int log_target,
                        double *sums);
} lucid_kl_runs;

#endif /* LUCID_KL_RUNS_H */
