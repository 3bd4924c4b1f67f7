"""Runtime SIMD dispatch: which instruction set lucid's kernels run with.

The run loops of ``kl_simd.h`` are compiled three times into this one
module, for the baseline instruction set every x86-64 CPU has (SSE2), for
AVX2 + FMA and for AVX-512, from one source. At import the best level the CPU
supports is chosen, unless the environment variable ``LUCID_SIMD`` asks for a
lower one (``baseline``, ``avx2`` or ``avx512``), which is how the tests
check that every level gives the same answers. The other kernel modules call
through :c:func:`kl_runs` (and the benchmarks' and tests' probes, ``_probes``,
through :c:func:`probe_runs`), so the choice is made in exactly one place.

Levels differ only where the compiler contracts ``a * b + c`` into a fused
multiply-add (AVX2, AVX-512), which rounds once instead of twice: about 1 ulp
of the *terms* of an element's loss, p log p and p x. Where those nearly
cancel the loss is much smaller than its terms, and levels may differ by many
ulp of the loss itself, within the contract's bound (2**-22 of the terms for
float32, docs/api/kl_div.rst). Within a level, a reduction is bitwise identical for
any thread count and any memory layout of the same values.
"""
import os
import warnings

cdef extern from "kl_simd.h" nogil:
    int LUCID_SIMD_BASELINE
    int LUCID_SIMD_AVX2
    int LUCID_SIMD_AVX512
    int lucid_cpu_simd_level()
    const lucid_kl_runs *lucid_kl_runs_for(int level)
    const lucid_probe_runs *lucid_probe_runs_for(int level)

#: The level names, lowest first; ``LUCID_SIMD`` takes one of them.
SIMD_LEVELS = ("baseline", "avx2", "avx512")

cdef const lucid_kl_runs *_runs = NULL
cdef const lucid_probe_runs *_probe_runs = NULL
cdef int _level = 0


cdef const lucid_kl_runs *kl_runs() noexcept nogil:
    """The KL run loops of the level in use."""
    return _runs


cdef const lucid_probe_runs *probe_runs() noexcept nogil:
    """The probes of the level in use (for the benchmarks and tests only)."""
    return _probe_runs


def cpu_simd_level():
    """Return the best level this CPU supports, one of :data:`SIMD_LEVELS`."""
    return SIMD_LEVELS[lucid_cpu_simd_level()]


def simd_level():
    """Return the level the kernels run with, one of :data:`SIMD_LEVELS`."""
    return SIMD_LEVELS[_level]


def _set_simd_level(name):
    """Run the kernels with level ``name`` from now on (for tests and benchmarks).

    Raises ``ValueError`` for an unknown name or one this CPU cannot run.
    """
    global _runs, _probe_runs, _level
    if name not in SIMD_LEVELS:
        raise ValueError(f"SIMD level must be one of {', '.join(SIMD_LEVELS)}; got {name!r}")
    level = SIMD_LEVELS.index(name)
    if level > lucid_cpu_simd_level():
        raise ValueError(f"this CPU supports SIMD levels up to {cpu_simd_level()!r}, "
                         f"not {name!r}")
    _runs = lucid_kl_runs_for(level)
    _probe_runs = lucid_probe_runs_for(level)
    _level = level


def _level_from_environment():
    """The level ``LUCID_SIMD`` asks for, or the CPU's best when it is unset or empty."""
    requested = os.environ.get("LUCID_SIMD", "").strip().lower()
    if not requested:
        return cpu_simd_level()
    if requested not in SIMD_LEVELS:
        raise ValueError(f"LUCID_SIMD={os.environ['LUCID_SIMD']!r} is not a SIMD level; "
                         f"allowed values: {', '.join(SIMD_LEVELS)} (or unset for the best "
                         "this CPU supports)")
    if SIMD_LEVELS.index(requested) > lucid_cpu_simd_level():
        warnings.warn(f"LUCID_SIMD={requested} asks for more than this CPU supports; "
                      f"using {cpu_simd_level()}", RuntimeWarning, stacklevel=2)
        return cpu_simd_level()
    return requested


_set_simd_level(_level_from_environment())
