"""``DistillationLoss``: the fused distillation loss with its options fixed at construction."""
from lucid.nn.functional.distillation import check_options, distillation_loss


class DistillationLoss:
    """The knowledge-distillation loss from logits as a callable module.

    ``DistillationLoss(temperature, ...)(student_logits, teacher_logits, mask)``
    is ``distillation_loss(student_logits, teacher_logits, temperature, ...,
    mask=mask)``.

    Parameters
    ----------
    temperature : float, default 1.0
        :math:`T > 0`, finite.
    dim : int, default -1
        The class axis.
    reduction : {"batchmean", "mean", "sum", "none"}, default "batchmean"
        How the per-distribution losses are reduced; ``"mean"`` and
        ``"batchmean"`` divide by the number of distributions kept.
    divergence : {"kl", "reverse_kl", "jsd"}, default "kl"
        Which divergence of the teacher's p from the student's q.
    beta : float, default 0.5
        The JSD's weight, in (0, 1); ignored by the other two.
    scale_by_t2 : bool, default True
        Multiply the loss by :math:`T^2`.

    Returns
    -------
    DistillationLoss
        A callable ``loss(student_logits, teacher_logits, mask=None) -> Tensor``.

    Raises
    ------
    TypeError, ValueError
        For the options, at construction, as
        :func:`~lucid.nn.functional.distillation_loss` would.

    See Also
    --------
    lucid.nn.functional.distillation_loss : The function, with the formulas.

    Notes
    -----
    The options are checked once, here; ``dim`` against the inputs' number
    of dimensions at each call.

    Examples
    --------
    >>> import lucid
    >>> from lucid.nn import DistillationLoss
    >>> loss_fn = DistillationLoss(temperature=2.0)
    >>> loss_fn
    DistillationLoss(temperature=2.0, dim=-1, reduction='batchmean', divergence='kl', beta=0.5, scale_by_t2=True)
    >>> loss_fn(lucid.tensor([[2.0, 0.5, 0.1]]), lucid.tensor([[2.5, 0.2, 0.0]]))
    Tensor(0.0620...)
    """

    def __init__(self, temperature=1.0, *, dim=-1, reduction="batchmean", divergence="kl",
                 beta=0.5, scale_by_t2=True):
        check_options(temperature, reduction, divergence, beta, scale_by_t2)
        self.temperature = temperature
        self.dim = dim
        self.reduction = reduction
        self.divergence = divergence
        self.beta = beta
        self.scale_by_t2 = scale_by_t2

    def __call__(self, student_logits, teacher_logits, mask=None):
        """Return the loss of ``student_logits`` against ``teacher_logits`` with this module's options.

        Parameters
        ----------
        student_logits : Tensor or array_like
            The student's logits, classes along ``dim``.
        teacher_logits : Tensor or array_like
            The teacher's logits, broadcastable with the student's.
        mask : Tensor or array_like of bool, optional
            False drops a distribution from the loss and from the gradient.

        Returns
        -------
        Tensor
            The reduced loss, or the per-distribution losses for ``"none"``.

        Examples
        --------
        >>> import lucid
        >>> from lucid.nn import DistillationLoss
        >>> loss_fn = DistillationLoss(reduction="none")
        >>> loss_fn(lucid.tensor([[0.0, 1.0], [1.0, 0.0]]), lucid.tensor([[0.0, 2.0], [0.0, 1.0]]),
        ...         mask=lucid.tensor([True, False]))
        Tensor([0.0671..., 0.        ])
        """
        return distillation_loss(student_logits, teacher_logits, self.temperature, dim=self.dim,
                                 reduction=self.reduction, mask=mask, divergence=self.divergence,
                                 beta=self.beta, scale_by_t2=self.scale_by_t2)

    def __repr__(self):
        return (f"DistillationLoss(temperature={self.temperature!r}, dim={self.dim!r}, "
                f"reduction={self.reduction!r}, divergence={self.divergence!r}, "
                f"beta={self.beta!r}, scale_by_t2={self.scale_by_t2!r})")
