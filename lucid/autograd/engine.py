"""The backward engine: runs the recorded nodes in reverse topological order.

The order is found iteratively (Kahn's algorithm over consumer counts), so a
graph as deep as memory allows works: no recursion limit. Gradients travel in
a dict keyed by node; each node's entry is popped when the node runs, which is
after all its consumers ran, so the entry holds the sum of everything sent to
it. Leaves receive their gradient by accumulation into ``.grad`` (a new tensor
holding old + new; never overwritten), or, for :func:`lucid.autograd.grad`,
into a result that leaves ``.grad`` alone.
"""

import numpy as np

from lucid._creation import as_tensor
from lucid._tensor import Tensor
from lucid.autograd import grad_mode


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate the gradients of `tensors` into the ``.grad`` of the graph's leaves.

    Parameters
    ----------
    tensors : sequence of Tensor
        The outputs to differentiate.
    grad_tensors : sequence of Tensor or array-like, optional
        The gradient with respect to each output; may be omitted for
        one-element outputs (the gradient is then 1).
    retain_graph : bool, optional
        Keep the graph for another backward. Defaults to `create_graph`.
    create_graph : bool, default False
        Record the backward pass so gradients can be differentiated again.

    Returns
    -------
    None
        The gradients are added into the ``.grad`` of the leaves.

    Raises
    ------
    RuntimeError
        As :meth:`lucid.Tensor.backward`.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> lucid.autograd.backward([(x * x).sum(), x.sum()])
    >>> x.grad
    Tensor([3., 5.])
    """
    roots, seeds = roots_and_seeds(tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(roots, seeds, retain_graph, create_graph, _LeafGradAccumulator(seeds))


def run_backward(roots, seeds, retain_graph, create_graph, deliver_to_leaf, targets=None):
    """Propagate `seeds` from `roots` through the graph.

    Parameters
    ----------
    roots : list of Tensor
        Outputs that require grad.
    seeds : list of Tensor
        Their gradients, same shapes.
    retain_graph, create_graph : bool
    deliver_to_leaf : callable
        ``deliver_to_leaf(leaf, gradient)`` for every leaf reached.
    targets : set, optional
        Nodes whose incoming gradient the caller wants (``autograd.grad``);
        when given, only nodes leading to a target or to a leaf in it run,
        and ``{node: gradient}`` for the reached target nodes is returned.

    Returns
    -------
    dict
        Gradients arriving at the target nodes (empty without `targets`).
    """
    gradients, captured = {}, {}
    order = topological_order([root.grad_fn for root in roots if root.grad_fn is not None])
    needed = None if targets is None else _nodes_leading_to(order, targets)
    with grad_mode.set_grad_enabled(create_graph), np.errstate(all="ignore"):
        for root, seed in zip(roots, seeds):
            if root.grad_fn is None:
                deliver_to_leaf(root, seed)
            else:
                _add_into(gradients, root.grad_fn, seed)
        for node in order:
            gradient = gradients.pop(node, None)
            if gradient is None or (needed is not None and node not in needed):
                continue
            if targets is not None and node in targets:
                captured[node] = gradient
            for edge, input_gradient in zip(node.next_edges, _call_backward(node, gradient)):
                if input_gradient is None:
                    continue
                if isinstance(edge, Tensor):
                    deliver_to_leaf(edge, input_gradient)
                else:
                    _add_into(gradients, edge, input_gradient)
            if not retain_graph:
                node.ctx._release()
    return captured


def topological_order(roots):
    """Return the nodes reachable from `roots`, each before the nodes it depends on.

    Parameters
    ----------
    roots : list of Node

    Returns
    -------
    list of Node
        Every node comes after all nodes that consume its output.
    """
    consumers = {}
    stack, seen = list(roots), set(roots)
    while stack:
        for edge in _node_edges(stack.pop()):
            consumers[edge] = consumers.get(edge, 0) + 1
            if edge not in seen:
                seen.add(edge)
                stack.append(edge)
    ready = [node for node in dict.fromkeys(roots) if consumers.get(node, 0) == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in _node_edges(node):
            consumers[edge] -= 1
            if consumers[edge] == 0:
                ready.append(edge)
    return order


def _node_edges(node):
    return [edge for edge in node.next_edges if edge is not None and not isinstance(edge, Tensor)]


def _nodes_leading_to(order, targets):
    """Nodes from which a target node or target leaf can be reached (order runs consumers first)."""
    needed = set()
    for node in reversed(order):
        if node in targets or any(edge in needed or (isinstance(edge, Tensor) and edge in targets)
                                  for edge in node.next_edges if edge is not None):
            needed.add(node)
    return needed


def _call_backward(node, gradient):
    """Run one node's backward and check what it returns against its inputs."""
    results = node.function.backward(node.ctx, gradient)
    if not isinstance(results, tuple):
        results = (results,)
    if len(results) != len(node.next_edges):
        raise RuntimeError(
            f"function {node.name()} returned an incorrect number of gradients "
            f"(expected {len(node.next_edges)}, got {len(results)})"
        )
    checked = []
    for index, (edge, meta, result) in enumerate(zip(node.next_edges, node.input_meta, results)):
        if edge is None or result is None:
            checked.append(None)
            continue
        shape, dtype = meta
        result = as_tensor(result, f"gradient {index} returned by {node.name()}")
        if result.shape != shape:
            # Not summed silently: a vjp that broadcast must unbroadcast itself.
            raise RuntimeError(
                f"function {node.name()} returned an invalid gradient at index {index} - "
                f"got shape {result.shape} but expected shape {shape}"
            )
        checked.append(result if result.dtype == dtype else result.to(dtype))
    return checked


def _add_into(gradients, key, gradient):
    previous = gradients.get(key)
    gradients[key] = gradient if previous is None else previous + gradient


class _LeafGradAccumulator:
    """Adds the gradients arriving at leaves into their ``.grad``, for one backward pass.

    A leaf's first gradient becomes its ``.grad`` without a copy when the pass
    made that array itself and gave it to no one else: copying it would cost a
    full-size allocation and its page faults, more than most kernels that made
    it. Anything possibly shared (a caller's seed, a view, an array already
    given to another leaf) is copied, so an in-place edit of one ``.grad``
    never reaches another tensor.
    """

    def __init__(self, seeds):
        self._handed_out = {id(seed._data) for seed in seeds}

    def __call__(self, leaf, gradient):
        if grad_mode.is_grad_enabled():
            # create_graph: the sum stays differentiable.
            leaf.grad = gradient if leaf.grad is None else leaf.grad + gradient
        elif leaf.grad is None:
            leaf.grad = Tensor(self._adopt_or_copy(gradient._data))
        else:
            # np.asarray: the sum of two 0-d arrays is a numpy scalar.
            leaf.grad = Tensor(np.asarray(leaf.grad._data + gradient._data))

    def _adopt_or_copy(self, array):
        exclusive = (array.base is None and array.flags.writeable
                     and id(array) not in self._handed_out)
        self._handed_out.add(id(array))
        return array if exclusive else np.array(array)


def roots_and_seeds(tensors, grad_tensors):
    """Check the outputs of a backward pass and build their initial gradients.

    Parameters
    ----------
    tensors : Tensor or sequence of Tensor
    grad_tensors : Tensor, array-like, sequence of them, or None
        None (or a None entry) stands for 1, allowed for one-element outputs.

    Returns
    -------
    roots : list of Tensor
    seeds : list of Tensor
        One per root, with its shape and dtype.

    Raises
    ------
    RuntimeError
        If an output does not require grad, a gradient is missing for an
        output with more than one element, or a gradient's shape differs.
    """
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    tensors = tuple(tensors)
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,)
    grad_tensors = tuple(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"got {len(grad_tensors)} gradients for {len(tensors)} outputs")
    seeds = []
    for index, (tensor, gradient) in enumerate(zip(tensors, grad_tensors)):
        if not tensor.requires_grad:
            raise RuntimeError(
                f"element {index} of tensors does not require grad and does not have a grad_fn"
            )
        seeds.append(_seed(index, tensor, gradient))
    return list(tensors), seeds


def _seed(index, tensor, gradient):
    if gradient is None:
        if tensor.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return Tensor(np.ones(tensor.shape, dtype=tensor.dtype))
    gradient = as_tensor(gradient, f"the gradient of output {index}", dtype=tensor.dtype)
    if gradient.shape != tensor.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{index}] has a shape of {gradient.shape} and "
            f"output[{index}] has a shape of {tensor.shape}."
        )
    return gradient
