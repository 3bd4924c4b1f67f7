"""Functions on Tensors: the KL divergence and the softmax family it is used with."""
from lucid.nn.functional.kl_div import kl_div
from lucid.nn.functional.softmax import log_softmax, softmax

__all__ = ["kl_div", "log_softmax", "softmax"]
