"""lucid: the Kullback-Leibler divergence on multi-core CPUs.

``lucid.nn.functional.kl_div`` computes the KL divergence with OpenMP kernels
(forward, backward and reductions), on a small ``Tensor`` with a reverse-mode
autograd tape. See ``lucid.show_config()`` for how this build runs.
"""
from lucid._version import __version__
from lucid._dtypes import bool, float16, float32, float64, int32, int64
from lucid._tensor import Tensor
from lucid import _tensor_methods  # binds the operators and methods onto Tensor
from lucid._creation import (
    arange,
    as_tensor,
    from_numpy,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from lucid.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from lucid import autograd
from lucid._threads import get_num_threads, set_num_threads
from lucid._buffers import cache_info, empty_cache, set_cache_limit
from lucid import _fork  # registers the after-fork hook that keeps forked children safe
from lucid._config import config, show_config
from lucid import nn

__all__ = [
    "__version__", "Tensor", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full",
    "zeros_like", "ones_like", "rand", "randn", "arange", "manual_seed",
    "float16", "float32", "float64", "int32", "int64", "bool",
    "no_grad", "enable_grad", "is_grad_enabled", "autograd",
    "get_num_threads", "set_num_threads", "cache_info", "empty_cache", "set_cache_limit",
    "config", "show_config", "nn",
]
