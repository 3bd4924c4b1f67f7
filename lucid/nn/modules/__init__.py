"""Callable modules wrapping the functions of ``lucid.nn.functional``."""
from lucid.nn.modules.distillation import DistillationLoss
from lucid.nn.modules.loss import KLDivLoss

__all__ = ["DistillationLoss", "KLDivLoss"]
