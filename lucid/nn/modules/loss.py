"""``KLDivLoss``: kl_div with its options fixed at construction."""
from lucid import _kl_rules
from lucid.nn.functional.kl_div import kl_div


class KLDivLoss:
    """The KL divergence as a callable loss module.

    ``KLDivLoss(reduction, log_target)(x, target)`` is
    ``kl_div(x, target, reduction=reduction, log_target=log_target)``.

    Parameters
    ----------
    reduction : {"mean", "batchmean", "sum", "none"}, default "mean"
        How the per-element losses are reduced; see :func:`lucid.nn.functional.kl_div`.
    log_target : bool, default False
        Whether the target holds log-probabilities.

    Returns
    -------
    KLDivLoss
        A callable ``loss(x, target) -> Tensor``.

    Raises
    ------
    ValueError
        If ``reduction`` is not one of the four names (checked at construction).
    TypeError
        If ``log_target`` is not a bool (checked at construction too).

    See Also
    --------
    lucid.nn.functional.kl_div : The function, with the conventions and formulas.

    Notes
    -----
    ``x`` is log q and ``target`` is p (or log p), as for ``kl_div``.

    Examples
    --------
    >>> import lucid
    >>> from lucid.nn import KLDivLoss
    >>> from lucid.nn.functional import log_softmax
    >>> loss = KLDivLoss(reduction="batchmean")
    >>> loss
    KLDivLoss(reduction='batchmean', log_target=False)
    >>> loss(log_softmax(lucid.tensor([[2.0, 0.5, 0.1]]), dim=1),
    ...      lucid.tensor([[0.8, 0.15, 0.05]]))
    Tensor(0.0239...)
    """

    def __init__(self, reduction="mean", log_target=False):
        self.reduction = _kl_rules.check_reduction(reduction)
        self.log_target = _kl_rules.check_bool(log_target)

    def __call__(self, x, target):
        """Return ``kl_div(x, target)`` with this module's options.

        Parameters
        ----------
        x : Tensor or array_like
            Log-probabilities of the predicted distribution.
        target : Tensor or array_like
            Probabilities (or log-probabilities) of the target distribution.

        Returns
        -------
        Tensor
            The reduced loss, or per-element losses for ``reduction="none"``.

        Examples
        --------
        >>> import lucid
        >>> from lucid.nn import KLDivLoss
        >>> KLDivLoss(reduction="sum")(lucid.tensor([-1.0]), lucid.tensor([0.5]))
        Tensor(0.1534...)
        """
        return kl_div(x, target, reduction=self.reduction, log_target=self.log_target)

    def __repr__(self):
        return f"KLDivLoss(reduction={self.reduction!r}, log_target={self.log_target!r})"
