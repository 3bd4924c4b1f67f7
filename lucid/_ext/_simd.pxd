# Runtime SIMD dispatch: the tables of run loops for the level chosen at import.

# The KL runs (kl_runs.h), which _kl_div's block loops call.
cdef extern from "kl_runs.h" nogil:
    ctypedef struct lucid_kl_runs:
        double (*sum_f32)(const float *x, const float *t, Py_ssize_t n, int log_target) noexcept nogil
        double (*sum_f64)(const double *x, const double *t, Py_ssize_t n, int log_target) noexcept nogil
        void (*elementwise_f32)(const float *x, const float *t, float *out, Py_ssize_t n,
                                int log_target) noexcept nogil
        void (*elementwise_f64)(const double *x, const double *t, double *out, Py_ssize_t n,
                                int log_target) noexcept nogil
        void (*grad_f32)(const float *x, const float *t, const float *g, int g_scalar,
                         float *out, Py_ssize_t n, int log_target, int wrt_target) noexcept nogil
        void (*grad_f64)(const double *x, const double *t, const double *g, int g_scalar,
                         double *out, Py_ssize_t n, int log_target, int wrt_target) noexcept nogil
        double (*stats_f32)(const float *x, const float *t, Py_ssize_t n, int log_target,
                            double *sums) noexcept nogil
        double (*stats_f64)(const double *x, const double *t, Py_ssize_t n, int log_target,
                            double *sums) noexcept nogil

# The probes (probe_runs.h), for the benchmarks and the tests only: the
# bandwidth probe and the log / exp hooks, which _probes calls.
cdef extern from "probe_runs.h" nogil:
    ctypedef struct lucid_probe_runs:
        double (*read_both_f32)(const float *a, const float *b, Py_ssize_t n) noexcept nogil
        double (*read_both_f64)(const double *a, const double *b, Py_ssize_t n) noexcept nogil
        void (*log_f32)(const float *a, float *out, Py_ssize_t n) noexcept nogil
        void (*exp_f32)(const float *a, float *out, Py_ssize_t n) noexcept nogil
        void (*log_f64)(const double *a, double *out, Py_ssize_t n) noexcept nogil
        void (*exp_f64)(const double *a, double *out, Py_ssize_t n) noexcept nogil

cdef const lucid_kl_runs *kl_runs() noexcept nogil
cdef const lucid_probe_runs *probe_runs() noexcept nogil
