"""``KLDivergence``: ``kl_div`` accumulated over a stream of batches.

An evaluation set rarely arrives as one array: it comes in batches from a data
loader, or in shards from several processes. The metric keeps only a float64
sum and two counts, so any split of the data into batches (and any merge of
metrics computed apart) gives the same value as one ``kl_div`` call on the
concatenated data.
"""
import math

import numpy as np

import lucid
from lucid import _kl_rules
from lucid._ext import kl_div as kernels
from lucid.metrics._compensated import CompensatedSum



class KLDivergence:
    r"""A streaming KL divergence: ``kl_div`` over batches of one long array.

    Parameters
    ----------
    log_target : bool, default False
        Whether targets hold :math:`\log p` instead of :math:`p`, as in
        ``kl_div``.
    reduction : {"batchmean", "mean", "sum"}, default "batchmean"
        ``"batchmean"``: the summed loss divided by the total number of rows
        (the leading dimension, summed over batches), the KL divergence per
        sample. ``"mean"``: divided by the total number of elements.
        ``"sum"``: the summed loss.

    Attributes
    ----------
    rows : int
        Rows (sizes of the leading dimension) seen since the last reset.
    elements : int
        Loss elements seen since the last reset.

    Raises
    ------
    ValueError
        If ``reduction`` is not one of the three names.
    TypeError
        If ``log_target`` is not a bool.

    See Also
    --------
    lucid.nn.functional.kl_div : The one-shot function this accumulates.
    lucid.dask.kl_div : The same over a Dask array on a cluster.

    Notes
    -----
    The state is a float64 sum of the per-element losses, kept with Neumaier
    compensation, plus the row and element counts. For float64 inputs,
    :meth:`compute` after any split into batches agrees with one ``kl_div``
    call on the concatenated batches to about :math:`10^{-15}` relative (well
    within the promised :math:`10^{-12}`). float16 and float32 batches are summed in
    float64 too, so the metric is at least as accurate as ``kl_div``, whose
    result is rounded to the input dtype.

    Batches are pieces of one array split along its first axis: every batch
    must have the loss shape ``(n, *rest)`` with the same ``rest``. The metric
    is picklable, so shards computed in other processes can be sent back and
    combined with :meth:`merge`.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.metrics import KLDivergence
    >>> from lucid.nn.functional import kl_div
    >>> rng = np.random.default_rng(0)
    >>> log_q = np.log(rng.dirichlet(np.ones(4), size=10))
    >>> p = rng.dirichlet(np.ones(4), size=10)
    >>> metric = KLDivergence()
    >>> metric.update(log_q[:3], p[:3])
    >>> metric.update(log_q[3:], p[3:])
    >>> metric.compute()
    0.6...
    >>> kl_div(log_q, p, reduction="batchmean")
    Tensor(0.6..., dtype=float64)

    Shards computed apart combine with ``merge``:

    >>> left, right = KLDivergence(), KLDivergence()
    >>> left.update(log_q[:5], p[:5])
    >>> right.update(log_q[5:], p[5:])
    >>> left.merge(right)
    >>> abs(left.compute() - metric.compute()) < 1e-12
    True
    """

    def __init__(self, log_target=False, reduction="batchmean"):
        self.log_target = _kl_rules.check_bool(log_target)
        self.reduction = _kl_rules.check_reduction(reduction, _kl_rules.SCALAR_REDUCTIONS)
        self.reset()

    def reset(self):
        """Forget every batch seen so far.

        Returns
        -------
        None

        Examples
        --------
        >>> from lucid.metrics import KLDivergence
        >>> metric = KLDivergence()
        >>> metric.update([[-0.5, -1.0]], [[0.6, 0.4]])
        >>> metric.reset()
        >>> metric.rows
        0
        """
        self._sum = CompensatedSum()
        self.rows = 0
        self.elements = 0
        self._row_shape = None

    def update(self, x, target):
        """Add one batch: ``x`` is log q, ``target`` is p (or log p), as in ``kl_div``.

        Parameters
        ----------
        x : Tensor or array_like
            Log-probabilities of the predicted distribution; read in place.
        target : Tensor or array_like
            Probabilities of the target distribution, or log-probabilities when
            ``log_target=True``; broadcasts with ``x``.

        Returns
        -------
        None

        Raises
        ------
        TypeError
            If an input is not a floating tensor or array (native byte order,
            as for ``kl_div``).
        ValueError
            If the shapes do not broadcast, the loss is 0-d, or its shape after
            the first axis differs from earlier batches.

        Notes
        -----
        Nothing the size of the batch is allocated: the kernels sum the losses
        of the broadcast inputs in place. Tensors that require grad (a model's
        outputs in a training loop) are read detached: nothing is recorded.

        Examples
        --------
        >>> from lucid.metrics import KLDivergence
        >>> metric = KLDivergence(reduction="sum")
        >>> metric.update([[-0.5, -1.0]], [[0.6, 0.4]])
        >>> metric.rows, metric.elements
        (1, 2)
        """
        x = _float_array(x, "x")
        target = _float_array(target, "target")
        try:
            shape = np.broadcast_shapes(x.shape, target.shape)
        except ValueError:
            raise ValueError(f"KLDivergence.update: x of shape {x.shape} and target of shape "
                             f"{target.shape} do not broadcast") from None
        self._check_row_shape(shape)
        self._sum.add(kernels.kl_div_sum(x, target, self.log_target))
        self.rows += shape[0]
        self.elements += math.prod(shape)

    def compute(self):
        """Return the reduced KL divergence of every batch seen, as a float.

        Returns
        -------
        float
            The float64 result; NaN for ``"mean"`` and ``"batchmean"`` when no
            element was seen, 0.0 for ``"sum"``.

        Examples
        --------
        >>> from lucid.metrics import KLDivergence
        >>> KLDivergence().compute()
        nan
        """
        return _kl_rules.reduce_total(self._sum.value, self.reduction, self.elements, self.rows)

    def merge(self, other):
        """Add everything another metric has seen to this one.

        Parameters
        ----------
        other : KLDivergence
            A metric with the same ``log_target`` and ``reduction``; unchanged.

        Returns
        -------
        None

        Raises
        ------
        TypeError
            If ``other`` is not a ``KLDivergence``.
        ValueError
            If the settings or the row shapes of the two differ.

        Examples
        --------
        >>> from lucid.metrics import KLDivergence
        >>> a, b = KLDivergence(), KLDivergence()
        >>> a.update([[-0.5, -1.0]], [[0.6, 0.4]])
        >>> b.update([[-1.0, -0.5]], [[0.6, 0.4]])
        >>> a.merge(b)
        >>> a.rows
        2
        """
        if not isinstance(other, KLDivergence):
            raise TypeError(f"merge expects a KLDivergence, got {type(other).__name__}")
        if (other.log_target, other.reduction) != (self.log_target, self.reduction):
            raise ValueError(
                f"merge: metrics differ: log_target={self.log_target}, reduction="
                f"{self.reduction!r} here, log_target={other.log_target}, reduction="
                f"{other.reduction!r} in other")
        if other._row_shape is not None:
            self._check_row_shape((0, *other._row_shape))
        self._sum.merge(other._sum)
        self.rows += other.rows
        self.elements += other.elements

    def _check_row_shape(self, shape):
        if not shape:
            raise ValueError("KLDivergence: a batch needs a leading (row) dimension; "
                             "the loss of this one is 0-d")
        if self._row_shape is None:
            self._row_shape = shape[1:]
        elif shape[1:] != self._row_shape:
            raise ValueError(f"KLDivergence: batches must share their shape after the first "
                             f"axis; earlier rows have {self._row_shape}, this batch "
                             f"{shape[1:]}")

    def __repr__(self):
        return (f"KLDivergence(log_target={self.log_target}, reduction={self.reduction!r}, "
                f"rows={self.rows}, value={self.compute()!r})")


def _float_array(value, name):
    # Detached: a model output that requires grad is read, never recorded.
    array = lucid.as_tensor(value, name).detach().numpy()
    _kl_rules.check_float_dtype(array.dtype, name, "KLDivergence.update")
    return array
