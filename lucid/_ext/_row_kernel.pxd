# The row kernel's C interface (row_kernel.h), shared by its two callers: the
# evaluation job's rows (_rowwise.pyx) and the distillation loss's pairs of
# rows (_distill.pyx). Declarations only: no module behind it.
from libc.stdint cimport int64_t

cdef extern from "row_kernel.h" nogil:
    enum:
        LUCID_ROW_MAX_DIMS
    ctypedef struct lucid_row_input:
        const char *data
        int dtype
        Py_ssize_t col_stride
        Py_ssize_t row_strides[LUCID_ROW_MAX_DIMS]
    ctypedef struct lucid_row_job:
        lucid_row_input teacher
        const lucid_row_input *students
        int n_students
        int teacher_kind
        int student_kind
        int lead_ndim
        Py_ssize_t lead_shape[LUCID_ROW_MAX_DIMS]
        Py_ssize_t cols
        double scale
        int narrow
        const int64_t *labels
        int64_t ignore_index
        Py_ssize_t rows
        double *kl
        int64_t *student_argmax
        int64_t *teacher_argmax
        double *student_logprob
        double *teacher_logprob
    ctypedef struct lucid_row_pair_io:
        int seed_max
        float *keep_teacher
        float *keep_student
        double *keep_teacher_f64
        double *keep_student_f64
        const char *ahead_teacher
        const char *ahead_student
        double shift[2]
        double log_sum[2]
        int kept
    ctypedef void (*lucid_row_compare_fn)(const lucid_row_job *, Py_ssize_t, char *) noexcept nogil
    ctypedef void (*lucid_row_pair_fn)(const lucid_row_job *, char *,
                                       lucid_row_pair_io *) noexcept nogil
    size_t lucid_row_work_bytes(int n_students)
    lucid_row_compare_fn lucid_row_compare_for(int level)
    lucid_row_pair_fn lucid_row_pair_for(int level)
    # Storage codes and row kinds.
    enum:
        LUCID_ROW_F32
        LUCID_ROW_F64
        LUCID_ROW_LOGITS
