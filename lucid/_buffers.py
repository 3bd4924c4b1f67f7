"""The gradient buffer cache: large gradients reuse the memory of the last ones.

lucid makes the input-sized gradients of ``kl_div`` and ``distillation_loss``
with a numpy memory handler of its own (``lucid/_ext/buffer_cache.h``). When
such a gradient is freed (``loss.backward()`` after ``x.grad = None``, or the
gradient simply going out of scope), its memory is kept for the next gradient
of the same size rather than handed back to the operating system. A training
loop frees last step's gradient and makes one of the same size every step; a
fresh array of that size would have every page found, zeroed and mapped again
on its first write, which for a 512 MB gradient takes as long as reading both
inputs.

The environment variable ``LUCID_CACHE_LIMIT`` (bytes, 0 for off), read when
lucid is imported, sets the limit without a code change.
"""
import collections
import numbers
import os
import warnings

from lucid._ext import _cache

#: Arrays smaller than this many bytes never use the cache.
MIN_BYTES = _cache.MIN_BYTES

CacheInfo = collections.namedtuple("CacheInfo", ["bytes_held", "blocks_held", "reused", "limit"])
CacheInfo.__doc__ = """What the gradient buffer cache holds (:func:`lucid.cache_info`).

Attributes
----------
bytes_held : int
    Bytes of freed gradients kept for reuse.
blocks_held : int
    How many blocks those are (at most 16).
reused : int
    Gradients made from a kept block since the process started.
limit : int
    The most bytes the cache keeps (:func:`lucid.set_cache_limit`).
"""


def set_cache_limit(nbytes):
    """Set the most memory the gradient buffer cache keeps; 0 turns it off.

    Parameters
    ----------
    nbytes : int
        Bytes of freed gradients to keep, at least 0. The default is 2 GiB,
        or ``LUCID_CACHE_LIMIT`` when that environment variable is set (read
        once, when lucid is imported; a value that is not an int >= 0 is
        ignored with a ``RuntimeWarning`` naming it).

    Returns
    -------
    int
        The previous limit.

    Raises
    ------
    TypeError
        If ``nbytes`` is not an integer (``bool`` and ``float`` included).
    ValueError
        If ``nbytes`` is negative.

    See Also
    --------
    empty_cache : Free what the cache holds now.
    cache_info : What it holds.

    Notes
    -----
    lucid makes the input-sized gradients of ``kl_div`` and
    ``distillation_loss`` (those of at least 16 MiB) with a numpy memory
    handler of its own. When such a gradient is freed, its memory is kept for
    the next gradient of exactly the same size instead of going back to the
    operating system, which would have to find, zero and map every page again
    on the next gradient's first write. In a training loop, which frees last
    step's gradient and makes one of the same size, that saves as much time
    as reading both inputs once (see the distillation guide).

    What is kept: the most recently freed blocks, up to ``nbytes`` in all (the
    oldest leave first) and at most 16 of them. A block is kept only after its
    array is gone, so the cache never holds memory that a program is using;
    it holds memory the program used a moment ago, until the next gradient of
    that size takes it, :func:`empty_cache` frees it or the process ends.
    Lowering the limit frees the oldest blocks at once. The gradients are
    ordinary numpy arrays that own their data; only where their memory goes
    afterwards differs. Arrays made by numpy itself (``x.grad + 1``, copies)
    never use the cache.

    Examples
    --------
    >>> import lucid
    >>> before = lucid.set_cache_limit(0)      # off: every gradient is fresh memory
    >>> lucid.cache_info().bytes_held
    0
    >>> lucid.set_cache_limit(before)
    0
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral):
        raise TypeError(f"set_cache_limit expects an int >= 0, got "
                        f"{type(nbytes).__name__} {nbytes!r}")
    if nbytes < 0:
        raise ValueError(f"set_cache_limit expects an int >= 0, got {nbytes}")
    # Limits past what size_t holds mean "no limit".
    return _cache.set_limit(min(int(nbytes), 2**64 - 1))


def empty_cache():
    """Free the memory the gradient buffer cache holds.

    Returns
    -------
    int
        The bytes freed. Gradients still in use are not touched; the cache
        keeps the next ones freed, up to its limit, as before.

    See Also
    --------
    set_cache_limit : Keep less, or nothing.
    cache_info : What it holds.

    Examples
    --------
    >>> import numpy as np
    >>> import lucid
    >>> from lucid.nn.functional import kl_div
    >>> x = lucid.tensor(np.full((2048, 4096), np.log(1 / 4096), dtype=np.float32),
    ...                  requires_grad=True)
    >>> p = lucid.tensor(np.full((2048, 4096), 1 / 4096, dtype=np.float32))
    >>> kl_div(x, p, reduction="sum").backward()   # a 32 MiB gradient
    >>> x.grad = None                              # freed: the cache keeps its memory
    >>> lucid.cache_info().bytes_held >= 32 * 2**20
    True
    >>> lucid.empty_cache() >= 32 * 2**20
    True
    >>> lucid.cache_info().bytes_held
    0
    """
    return _cache.release()


def cache_info():
    """What the gradient buffer cache holds now.

    Returns
    -------
    CacheInfo
        ``(bytes_held, blocks_held, reused, limit)``: the bytes and blocks of
        freed gradients kept, how many gradients have reused a kept block so
        far, and the limit.

    See Also
    --------
    set_cache_limit, empty_cache

    Examples
    --------
    >>> import lucid
    >>> lucid.cache_info()._fields
    ('bytes_held', 'blocks_held', 'reused', 'limit')
    """
    return CacheInfo(*_cache.stats())


def _limit_from_environment():
    """Apply ``LUCID_CACHE_LIMIT`` if set.

    A value that is not an int >= 0 is ignored with a RuntimeWarning, as the
    OpenMP runtime treats a bad ``OMP_NUM_THREADS``: an exception here would
    end every program that imports lucid, ``lucid-eval`` included, with a
    traceback.
    """
    text = os.environ.get("LUCID_CACHE_LIMIT", "").strip()
    if not text:
        return
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        warnings.warn(f"LUCID_CACHE_LIMIT={os.environ['LUCID_CACHE_LIMIT']!r} is not a byte "
                      f"count (an int >= 0; 0 turns the gradient buffer cache off); keeping "
                      f"the default limit of {cache_info().limit} bytes", RuntimeWarning,
                      stacklevel=2)
        return
    set_cache_limit(value)


_limit_from_environment()
