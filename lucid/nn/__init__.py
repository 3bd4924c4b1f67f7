"""Neural-network building blocks: ``lucid.nn.functional`` and loss modules."""
from lucid.nn import functional
from lucid.nn.modules import DistillationLoss, KLDivLoss

__all__ = ["functional", "DistillationLoss", "KLDivLoss"]
