"""The autograd tape: recording operations and differentiating through them.

- :mod:`~lucid.autograd.grad_mode`: ``no_grad``, ``enable_grad``,
  ``is_grad_enabled``, ``set_grad_enabled``;
- :mod:`~lucid.autograd.function`: :class:`Function` (forward + vjp) and the
  node it records;
- :mod:`~lucid.autograd.engine`: ``backward``, the iterative reverse pass;
- :mod:`~lucid.autograd.functional`: :func:`grad`, gradients returned rather
  than accumulated;
- :mod:`~lucid.autograd.gradcheck`: :func:`gradcheck` against finite
  differences.
"""

from lucid.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from lucid.autograd.function import Context, Function
from lucid.autograd.engine import backward
from lucid.autograd.functional import grad
from lucid.autograd.gradcheck import GradcheckError, gradcheck

__all__ = [
    "Context",
    "Function",
    "GradcheckError",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]
