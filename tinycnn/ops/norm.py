"""Normalisation (to be written)."""


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    raise NotImplementedError


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    raise NotImplementedError
