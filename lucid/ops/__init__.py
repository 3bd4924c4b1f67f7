"""Differentiable primitives: a numpy forward and a vjp written with lucid's own ops.

Each module groups one family:

- :mod:`~lucid.ops.arithmetic`: ``+ - * / ** @`` and negation;
- :mod:`~lucid.ops.elementwise`: ``exp``, ``log``, ``where``;
- :mod:`~lucid.ops.reduction`: ``sum``, ``mean``, ``max``;
- :mod:`~lucid.ops.shape`: ``reshape``, ``view``, ``transpose``, ``permute``,
  ``unsqueeze``, ``squeeze``;
- :mod:`~lucid.ops.indexing`: ``getitem``, ``take_along_dim`` and the
  scatters that are their gradients;
- :mod:`~lucid.ops.broadcasting`: ``broadcast_to`` and ``unbroadcast``;
- :mod:`~lucid.ops.conversion`: ``to`` (dtype casts) and ``clone``;
- :mod:`~lucid.ops.comparison`: elementwise comparisons (not differentiable);
- :mod:`~lucid.ops.inplace`: in-place operators, with the autograd checks.

Because every vjp is itself made of these ops, backward passes run with
``create_graph=True`` are recorded too, giving second derivatives.
"""

from lucid.ops import (  # noqa: F401
    arithmetic,
    broadcasting,
    comparison,
    conversion,
    elementwise,
    indexing,
    inplace,
    reduction,
    shape,
)
