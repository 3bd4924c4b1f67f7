"""``grad``: gradients of outputs with respect to chosen inputs, returned rather than accumulated.

It runs the same engine as ``Tensor.backward``, but delivers what reaches the
inputs into a result tuple and leaves every ``.grad`` untouched, and it runs
only the part of the graph that leads to the inputs.
"""

from lucid._tensor import Tensor
from lucid.autograd import engine


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Return the gradients of `outputs` with respect to `inputs`.

    Parameters
    ----------
    outputs : Tensor or sequence of Tensor
    inputs : Tensor or sequence of Tensor
        Tensors that require grad: leaves or intermediate results.
    grad_outputs : Tensor or sequence of Tensor, optional
        The gradient with respect to each output; may be omitted for
        one-element outputs.
    retain_graph : bool, optional
        Keep the graph for another backward. Defaults to `create_graph`.
    create_graph : bool, default False
        Record the computation so the returned gradients are differentiable
        (Hessian-vector products, gradient penalties).
    allow_unused : bool, default False
        Return None for inputs the outputs do not depend on, instead of
        raising.

    Returns
    -------
    tuple of Tensor or None
        One entry per input, with its shape and dtype.

    Raises
    ------
    RuntimeError
        If an input does not require grad, or is unused and `allow_unused` is
        False; and as :meth:`lucid.Tensor.backward`.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x ** 3).sum()
    >>> (g,) = lucid.autograd.grad(y, x, create_graph=True)
    >>> g
    Tensor([ 3., 12.], grad_fn=<WhereBackward>)
    >>> lucid.autograd.grad(g.sum(), x)
    (Tensor([ 6., 12.]),)
    >>> x.grad is None
    True
    """
    single_input = isinstance(inputs, Tensor)
    inputs = (inputs,) if single_input else tuple(inputs)
    for index, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {index}) does not require grad")
    roots, seeds = engine.roots_and_seeds(outputs, grad_outputs)
    # A leaf input is reached as itself, an intermediate input as the node that produced it.
    keys = [tensor if tensor.grad_fn is None else tensor.grad_fn for tensor in inputs]
    wanted, reached = set(keys), {}

    def deliver_to_leaf(leaf, gradient):
        if leaf in wanted:
            reached[leaf] = gradient if leaf not in reached else reached[leaf] + gradient

    if retain_graph is None:
        retain_graph = create_graph
    reached.update(engine.run_backward(roots, seeds, retain_graph, create_graph, deliver_to_leaf, wanted))
    results = []
    for index, key in enumerate(keys):
        if key not in reached and not allow_unused:
            raise RuntimeError(
                f"One of the differentiated Tensors (input {index}) appears to not have been used "
                "in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        results.append(reached.get(key))
    return tuple(results)
