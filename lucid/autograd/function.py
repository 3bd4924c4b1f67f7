"""Function, its context and the graph node it records.

A differentiable operation is a :class:`Function` subclass with a numpy
``forward`` and a ``backward`` (its vector-Jacobian product) written with
lucid's own operations. :meth:`Function.apply` runs the forward and, when grad
mode is on and an input requires grad, records a :class:`Node` on the result:
the function, its :class:`Context` (saved tensors and any attributes the
forward set) and one edge per forward argument, pointing at the node that
produced that input or at the leaf tensor itself.

Because backward is written with lucid operations, running it with grad mode
on (``create_graph=True``) records the backward pass too, which is what makes
second derivatives work.
"""

import numpy as np

from lucid._tensor import Tensor
from lucid.autograd import grad_mode

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class Context:
    """What a :class:`Function`'s forward leaves for its backward.

    Attributes may be set freely (``ctx.dim = dim``); tensors needed by the
    backward go through :meth:`save_for_backward`, so that an in-place change
    made after saving is detected instead of silently giving a wrong gradient.

    Attributes
    ----------
    needs_input_grad : tuple of bool
        One entry per forward argument: whether a gradient is wanted for it.

    Examples
    --------
    >>> from lucid.autograd.function import Context
    >>> ctx = Context()
    >>> ctx.save_for_backward(None)
    >>> ctx.saved_tensors
    (None,)
    """

    def __init__(self, needs_input_grad=()):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._freed = False
        self._function = None

    def save_for_backward(self, *tensors):
        """Keep `tensors` (or None) for the backward, remembering their versions.

        Parameters
        ----------
        *tensors : Tensor or None

        Returns
        -------
        None

        Raises
        ------
        TypeError
            If an argument is neither a Tensor nor None.

        Examples
        --------
        >>> import lucid
        >>> from lucid.autograd import Context
        >>> ctx = Context()
        >>> x = lucid.ones(2)
        >>> ctx.save_for_backward(x, None)
        >>> ctx.saved_tensors[0] is x
        True
        """
        for tensor in tensors:
            if tensor is not None and not isinstance(tensor, Tensor):
                raise TypeError(
                    f"save_for_backward can only save Tensors or None, got {type(tensor).__name__}"
                )
        self._saved = tuple((t, None if t is None else t._version) for t in tensors)

    @property
    def saved_tensors(self):
        """tuple of Tensor: the tensors given to :meth:`save_for_backward`.

        Raises
        ------
        RuntimeError
            If the graph was freed by an earlier backward, or if a saved tensor
            was modified in place after it was saved.

        Examples
        --------
        >>> import lucid
        >>> from lucid.autograd import Context
        >>> ctx = Context()
        >>> x = lucid.ones(2)
        >>> ctx.save_for_backward(x)
        >>> x += 1
        >>> ctx.saved_tensors
        Traceback (most recent call last):
        ...
        RuntimeError: one of the variables needed for gradient computation has been modified ...
        """
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE)
        for tensor, version in self._saved:
            if tensor is not None and tensor._version != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: [{tensor.dtype} Tensor of shape {tensor.shape}] is at version "
                    f"{tensor._version}; expected version {version} instead. Hint: it was saved by "
                    f"{_node_name(self._function)}; compute out of place (x = x + 1 rather than "
                    "x += 1) or clone() it."
                )
        return tuple(tensor for tensor, _ in self._saved)

    def _release(self):
        """Drop the saved tensors once a backward that does not retain the graph used them."""
        self._saved = ()
        self._freed = True


class Node:
    """A recorded application of a Function: what backward runs, and where it sends gradients.

    Parameters
    ----------
    function : type
        The :class:`Function` subclass.
    ctx : Context
    next_edges : tuple
        One entry per forward argument: the input's Node, the input itself
        when it is a leaf that requires grad, or None.
    input_meta : tuple
        ``(shape, dtype)`` per forward argument (None for non-Tensors), used to
        check the gradients backward returns.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.ones(2, requires_grad=True)
    >>> (x * 2).grad_fn
    <MulBackward>
    """

    __slots__ = ("function", "ctx", "next_edges", "input_meta")

    def __init__(self, function, ctx, next_edges, input_meta):
        self.function = function
        self.ctx = ctx
        self.next_edges = next_edges
        self.input_meta = input_meta

    def name(self):
        """Return the node's name: the Function's class name (leading ``_`` dropped) + ``Backward``.

        Returns
        -------
        str
        """
        return _node_name(self.function)

    def __repr__(self):
        return f"<{self.name()}>"


class Function:
    """Base class of differentiable operations.

    Subclasses define two static methods:

    - ``forward(ctx, *args)`` receives the arguments of :meth:`apply` as given
      (tensors stay tensors) and returns a numpy array (or a Tensor);
    - ``backward(ctx, grad)`` receives the gradient of the output (a Tensor)
      and returns one gradient per forward argument, None where there is none.
      Gradients must have their input's shape: a backward that broadcast its
      inputs calls :func:`lucid.ops.broadcasting.unbroadcast`.

    Notes
    -----
    The forward runs without recording and with numpy's floating point warnings
    silenced, so inf and NaN follow IEEE rules quietly, as in the reference
    framework. The recorded node is named ``<ClassNameBackward>``.

    Examples
    --------
    >>> import numpy as np
    >>> import lucid
    >>> from lucid.autograd import Function
    >>> class Cube(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x._data ** 3
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return grad * 3 * x * x
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> y = Cube.apply(x)
    >>> y
    Tensor([1., 8.], grad_fn=<CubeBackward>)
    >>> y.sum().backward()
    >>> x.grad
    Tensor([ 3., 12.])
    """

    @staticmethod
    def forward(ctx, *args):
        """Compute the result; subclasses override this.

        Parameters
        ----------
        ctx : Context
            Where to save what the backward needs.
        *args
            The arguments given to :meth:`apply`, unchanged.

        Returns
        -------
        numpy.ndarray or Tensor
            The result; :meth:`apply` wraps an array in a Tensor.

        Raises
        ------
        NotImplementedError
            Always, in the base class.

        Examples
        --------
        >>> import lucid
        >>> from lucid.autograd import Function
        >>> class Double(Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         return 2 * x._data
        >>> Double.apply(lucid.ones(2))
        Tensor([2., 2.])
        """
        raise NotImplementedError("Function subclasses must implement forward(ctx, *args)")

    @staticmethod
    def backward(ctx, grad):
        """Return the gradient with respect to each forward argument; subclasses override this.

        Parameters
        ----------
        ctx : Context
            What the forward saved; ``ctx.needs_input_grad`` says which
            gradients are wanted.
        grad : Tensor
            The gradient with respect to the forward's result.

        Returns
        -------
        tuple
            One entry per forward argument (a single value when there is one
            argument): a Tensor with that argument's shape, or None.

        Raises
        ------
        NotImplementedError
            Always, in the base class.

        Examples
        --------
        >>> import lucid
        >>> from lucid.autograd import Function
        >>> class Scale(Function):
        ...     @staticmethod
        ...     def forward(ctx, x, factor):
        ...         ctx.factor = factor
        ...         return factor * x._data
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         return grad * ctx.factor, None
        >>> x = lucid.ones(2, requires_grad=True)
        >>> Scale.apply(x, 3.0).sum().backward()
        >>> x.grad
        Tensor([3., 3.])
        """
        raise NotImplementedError("Function subclasses must implement backward(ctx, grad)")

    @classmethod
    def apply(cls, *args):
        """Run the forward and record a node when some input requires grad.

        Parameters
        ----------
        *args
            Passed to ``forward`` as given.

        Returns
        -------
        Tensor
            The forward's result; it requires grad when a node was recorded.

        Examples
        --------
        >>> import lucid
        >>> from lucid.autograd import Function
        >>> class Square(Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x._data ** 2
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         (x,) = ctx.saved_tensors
        ...         return 2 * x * grad
        >>> Square.apply(lucid.tensor([3.0], requires_grad=True))
        Tensor([9.], grad_fn=<SquareBackward>)
        >>> Square.apply(lucid.tensor([3.0])).grad_fn is None
        True
        """
        wants_grad = tuple([isinstance(arg, Tensor) and arg._requires_grad for arg in args])
        record = True in wants_grad and grad_mode.is_grad_enabled()
        ctx = Context(wants_grad if record else (False,) * len(args))
        ctx._function = cls
        # Not the set_grad_enabled context manager: apply is the hot path of every op.
        previous = grad_mode._swap_enabled(False)
        try:
            with np.errstate(all="ignore"):
                raw = cls.forward(ctx, *args)
        finally:
            grad_mode._swap_enabled(previous)
        result = Tensor(raw._data if isinstance(raw, Tensor) else np.asarray(raw))
        _share_version_with_viewed_input(result, args)
        # Integer and bool results (indices, masks) are not differentiable.
        if record and result._data.dtype.kind == "f":
            result._requires_grad = True
            result.grad_fn = _record(cls, ctx, args, wants_grad)
        return result


def _node_name(function):
    # Private Function classes (_Mul) are named as their public operation (MulBackward).
    return "a Function" if function is None else function.__name__.lstrip("_") + "Backward"


def _record(function, ctx, args, wants_grad):
    """The node for one application: an edge and the shape/dtype of each argument."""
    edges, meta = [], []
    for arg, wanted in zip(args, wants_grad):
        if isinstance(arg, Tensor):
            edges.append((arg if arg.grad_fn is None else arg.grad_fn) if wanted else None)
            meta.append((arg._data.shape, arg._data.dtype))
        else:
            edges.append(None)
            meta.append(None)
    return Node(function, ctx, tuple(edges), tuple(meta))


def _share_version_with_viewed_input(result, args):
    """Make a result that views an input's memory share its version counter.

    Writing through a view changes the viewed tensor too, so both must see the
    version bump; ``_base`` lets in-place operators refuse to write through a
    view of a tensor that requires grad.
    """
    data = result._data
    for arg in args:
        if not isinstance(arg, Tensor):
            continue
        # A fresh array (no base) can only alias an input by being that input's array.
        aliases = data is arg._data or (
            data.base is not None and data.size and np.may_share_memory(data, arg._data)
        )
        if aliases:
            result._version_counter = arg._version_counter
            result._base = arg._base if arg._base is not None else arg
            return
