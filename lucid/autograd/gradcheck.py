"""``gradcheck``: the analytic Jacobian of a function against central finite differences.

Everything is done in float64 (inputs that require grad are copied to float64
leaves), where central differences with ``eps = 1e-6`` are accurate to about
``1e-10`` on smooth functions, so a mismatch beyond the tolerances is a bug in
a vjp rather than rounding.
"""

import numpy as np

from lucid import _dtypes
from lucid._tensor import Tensor
from lucid.autograd.functional import grad


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` when the analytic and numerical Jacobians differ.

    Examples
    --------
    >>> import lucid
    >>> from lucid.autograd import Function, GradcheckError, gradcheck
    >>> class WrongExp(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         return x._data * 0 + 2.718281828459045 ** x._data
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         return grad
    >>> x = lucid.tensor([0.5], dtype=lucid.float64, requires_grad=True)
    >>> try:
    ...     gradcheck(WrongExp.apply, (x,))
    ... except GradcheckError as error:
    ...     print(str(error).splitlines()[0])
    Jacobian mismatch for output 0 with respect to input 0: largest difference at [0, 0]: ...
    """


def gradcheck(func, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check the gradients of `func` against central finite differences.

    Parameters
    ----------
    func : callable
        Takes the `inputs` (as positional arguments) and returns a Tensor or a
        tuple of Tensors.
    inputs : Tensor or sequence
        Tensors that require grad are checked (as float64 copies); other
        arguments are passed through unchanged.
    eps : float, default 1e-6
        The finite-difference step.
    atol, rtol : float
        Entries pass when ``|analytical - numerical| <= atol + rtol * |numerical|``.
    raise_exception : bool, default True
        Raise on a mismatch (otherwise return False).

    Returns
    -------
    bool
        True when every Jacobian matches.

    Raises
    ------
    GradcheckError
        On a mismatch, naming the output and input and showing both Jacobians.
    ValueError
        If no input requires grad.

    Notes
    -----
    The analytic Jacobian is built row by row with :func:`lucid.autograd.grad`
    (one backward per output element), the numerical one column by column
    (two evaluations per input element), so keep the inputs small.

    Examples
    --------
    >>> import lucid
    >>> x = lucid.tensor([0.5, 1.5], dtype=lucid.float64, requires_grad=True)
    >>> lucid.autograd.gradcheck(lambda t: (t * t.exp()).sum(), (x,))
    True
    """
    arguments = _float64_leaves((inputs,) if isinstance(inputs, Tensor) else tuple(inputs))
    checked = [index for index, arg in enumerate(arguments) if isinstance(arg, Tensor) and arg.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input Tensor that requires grad")
    outputs = _as_outputs(func(*arguments))
    for output_index, output in enumerate(outputs):
        if not _dtypes.is_floating(output.dtype):
            continue
        analytical = _analytical_jacobians(output, [arguments[i] for i in checked])
        numerical = _numerical_jacobians(func, arguments, checked, output_index, eps)
        for input_index, a_jac, n_jac in zip(checked, analytical, numerical):
            if not np.allclose(a_jac, n_jac, rtol=rtol, atol=atol, equal_nan=True):
                if not raise_exception:
                    return False
                raise GradcheckError(_mismatch_message(output_index, input_index, a_jac, n_jac))
    return True


def _float64_leaves(arguments):
    converted = []
    for arg in arguments:
        if isinstance(arg, Tensor) and arg.requires_grad:
            arg = Tensor(np.array(arg._data, dtype=np.float64), requires_grad=True)
        converted.append(arg)
    return tuple(converted)


def _as_outputs(result):
    return (result,) if isinstance(result, Tensor) else tuple(result)


def _analytical_jacobians(output, inputs):
    """One matrix per input, of shape (output.numel(), input.numel())."""
    jacobians = [np.zeros((output.numel(), x.numel())) for x in inputs]
    if not output.requires_grad:
        return jacobians
    for row in range(output.numel()):
        seed = np.zeros(output.numel(), dtype=output.dtype)
        seed[row] = 1
        grads = grad(output, inputs, Tensor(seed.reshape(output.shape)), retain_graph=True, allow_unused=True)
        for jacobian, gradient in zip(jacobians, grads):
            if gradient is not None:
                jacobian[row] = gradient._data.reshape(-1)
    return jacobians


def _numerical_jacobians(func, arguments, checked, output_index, eps):
    jacobians = []
    for input_index in checked:
        flat = arguments[input_index]._data.reshape(-1)  # a view: the input is a contiguous float64 copy
        columns = []
        for element in range(flat.size):
            original = flat[element]
            flat[element] = original + eps
            plus = _evaluate(func, arguments, output_index)
            flat[element] = original - eps
            minus = _evaluate(func, arguments, output_index)
            flat[element] = original
            columns.append((plus - minus) / (2 * eps))
        if columns:
            jacobians.append(np.stack(columns, axis=1))
        else:  # an empty input: a Jacobian without columns
            jacobians.append(np.zeros((_evaluate(func, arguments, output_index).size, 0)))
    return jacobians


def _evaluate(func, arguments, output_index):
    # Grad mode stays on: `func` may itself differentiate (gradients of gradients).
    with np.errstate(all="ignore"):
        output = _as_outputs(func(*arguments))[output_index]
    # A copy: the output may be a view of the input that is about to be perturbed again.
    return np.array(output._data, dtype=np.float64).reshape(-1)


def _mismatch_message(output_index, input_index, analytical, numerical):
    difference = np.abs(analytical - numerical)
    # NaN (e.g. inf - inf) counts as the largest difference.
    worst = np.argmax(np.where(np.isnan(difference), np.inf, difference))
    row, column = np.unravel_index(worst, difference.shape)
    with np.printoptions(precision=6, suppress=True, threshold=200):
        return (
            f"Jacobian mismatch for output {output_index} with respect to input {input_index}: largest "
            f"difference at [{row}, {column}]: analytical {analytical[row, column]!r} vs numerical "
            f"{numerical[row, column]!r},\nnumerical:\n{numerical}\nanalytical:\n{analytical}\n"
        )
