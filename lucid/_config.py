"""``show_config``: what this build of lucid is and how it will run."""
import sys

import numpy as np

from lucid._buffers import cache_info
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
        ``"avx512"``), ``threads``, ``cache_limit`` (the gradient buffer
        cache's limit in bytes, :func:`lucid.set_cache_limit`), ``python``,
        ``numpy``.

    Examples
    --------
    >>> import lucid
    >>> sorted(lucid.config())
    ['cache_limit', 'compile_args', 'numpy', 'openmp', 'python', 'simd', 'threads', 'version']
    """
    return {
        "version": __version__,
        "openmp": _openmp_helpers.openmp_enabled(),
        "compile_args": _openmp_helpers.compile_args(),
        "simd": simd_level(),
        "threads": get_num_threads(),
        "cache_limit": cache_info().limit,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }


def show_config():
    """Print lucid's version, OpenMP status, compiler flags, thread count and cache limit.

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
      grad cache:    ... MiB limit
      python:        3...
      numpy:         ...
    """
    info = config()
    print(f"lucid {info['version']}")
    print(f"  OpenMP:        {'enabled' if info['openmp'] else 'disabled'}")
    print(f"  compile flags: {info['compile_args']}")
    print(f"  SIMD:          {info['simd']}")
    print(f"  threads:       {info['threads']}")
    print(f"  grad cache:    {info['cache_limit'] / 2**20:g} MiB limit")
    print(f"  python:        {info['python']}")
    print(f"  numpy:         {info['numpy']}")
