"""Functions on Tensors: the KL divergence, the fused distillation loss and the softmax family."""
from lucid.nn.functional.distillation import distillation_loss
from lucid.nn.functional.kl_div import kl_div
from lucid.nn.functional.softmax import log_softmax, softmax

__all__ = ["distillation_loss", "kl_div", "log_softmax", "softmax"]
