# Runtime SIMD dispatch: the table of run loops for the level chosen at import.
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
        double (*read_both_f32)(const float *a, const float *b, Py_ssize_t n) noexcept nogil
        double (*read_both_f64)(const double *a, const double *b, Py_ssize_t n) noexcept nogil
        void (*log_f32)(const float *a, float *out, Py_ssize_t n) noexcept nogil
        void (*exp_f32)(const float *a, float *out, Py_ssize_t n) noexcept nogil
        void (*log_f64)(const double *a, double *out, Py_ssize_t n) noexcept nogil
        void (*exp_f64)(const double *a, double *out, Py_ssize_t n) noexcept nogil

cdef const lucid_kl_runs *kl_runs() noexcept nogil
