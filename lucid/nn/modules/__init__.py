"""Callable modules wrapping the functions of ``lucid.nn.functional``."""
from lucid.nn.modules.loss import KLDivLoss

__all__ = ["KLDivLoss"]
