/* Probes: run loops that exist for the benchmarks and the tests only.
 *
 * No computation of lucid calls them; _probes.pyx is their one caller. They
 * are compiled per SIMD level beside the KL runs (kl_simd.h, section
 * "Probes") and handed out by _simd for the level in use, so they measure or
 * check the very code a level runs. Only the declaration is here, for the
 * same reason as kl_runs.h: only _simd.pyx includes kl_simd.h.
 *
 * - read_both, the bandwidth probe: the sum of a + b over a run, read with
 *   the loop that sums kl_div's losses (LUCID_DEFINE_SUM) and doing no other
 *   work. No kernel that reads both inputs can be faster, so the benchmarks
 *   give kl_div's timings as a fraction of it.
 * - log and exp, test hooks: out[i] = log(a[i]) or exp(a[i]) with log_exp.h's
 *   functions, for the accuracy sweeps of tests/test_simd_log_exp.py.
 */
#ifndef LUCID_PROBE_RUNS_H
#define LUCID_PROBE_RUNS_H

#include <stddef.h>

typedef struct lucid_probe_runs {
    double (*read_both_f32)(const float *a, const float *b, ptrdiff_t n);
    double (*read_both_f64)(const double *a, const double *b, ptrdiff_t n);
    void (*log_f32)(const float *a, float *out, ptrdiff_t n);
    void (*exp_f32)(const float *a, float *out, ptrdiff_t n);
    void (*log_f64)(const double *a, double *out, ptrdiff_t n);
    void (*exp_f64)(const double *a, double *out, ptrdiff_t n);
} lucid_probe_runs;

#endif /* LUCID_PROBE_RUNS_H */
