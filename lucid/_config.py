"""``show_config``: what this build of lucid is and how it will run."""
import sys

import numpy as np

from lucid._ext import _openmp_helpers, simd_level
from lucid._threads import get_num_threads
from lucid._version import __version__


def config():
    """Return the build and runtime facts that ``show_config`` prints, as a dict.

    Returns
    -------
    dict
        Keys ``version``, ``openmp``, ``compile_args``, ``simd`` (the
        instruction set the kernels run with: ``"baseline"``, ``"avx2"`` or
        ``"avx512"``), ``threads``, ``python``, ``numpy``.

    Examples
    --------
    >>> import lucid
    >>> sorted(lucid.config())
    ['compile_args', 'numpy', 'openmp', 'python', 'simd', 'threads', 'version']
    """
    return {
        "version": __version__,
        "openmp": _openmp_helpers.openmp_enabled(),
        "compile_args": _openmp_helpers.compile_args(),
        "simd": simd_level(),
        "threads": get_num_threads(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }


def show_config():
    """Print lucid's version, OpenMP status, compiler flags and thread count.

    Returns
    -------
    None

    Notes
    -----
    ``OpenMP: enabled`` means the kernels were compiled with ``-fopenmp`` and
    run in parallel on large inputs; ``disabled`` means a serial build (the
    compiler could not build and run an OpenMP program when lucid was built).

    Examples
    --------
    >>> import lucid
    >>> lucid.show_config()
    lucid ...
      OpenMP:        ...
      compile flags: -O3 ...
      SIMD:          ...
      threads:       ...
      python:        3...
      numpy:         ...
    """
    info = config()
    print(f"lucid {info['version']}")
    print(f"  OpenMP:        {'enabled' if info['openmp'] else 'disabled'}")
    print(f"  compile flags: {info['compile_args']}")
    print(f"  SIMD:          {info['simd']}")
    print(f"  threads:       {info['threads']}")
    print(f"  python:        {info['python']}")
    print(f"  numpy:         {info['numpy']}")
