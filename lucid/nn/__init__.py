"""Neural-network building blocks: ``lucid.nn.functional`` and loss modules."""
from lucid.nn import functional
from lucid.nn.modules import KLDivLoss

__all__ = ["functional", "KLDivLoss"]
