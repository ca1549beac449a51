"""BatchNormalization (Keras' names and defaults) and LocalResponseNormalization."""

from __future__ import annotations

import numbers

from .. import functional as F
from ..graph.layer import Layer, check_channels
from ..graph.shapes import fmt_shape
from ._common import check_args, positive_int


class BatchNormalization(Layer):
    """Batch normalization over ``axis`` (the channels: 1 for NCHW, -1 for NHWC input).

    Keras' conventions: ``momentum=0.99`` means ``moving = momentum·moving + (1 −
    momentum)·batch`` (PyTorch's ``momentum`` is ``1 − momentum`` here), ``epsilon=1e-3``.  Four
    weights per channel: ``gamma`` and ``beta`` (trainable, dropped by ``scale=False`` /
    ``center=False``), ``moving_mean`` and ``moving_variance`` (non-trainable, but counted in
    ``count_params()`` as Keras does).  ``training=True`` normalizes with the batch statistics and
    updates the moving ones; otherwise the moving statistics are used.  A frozen layer
    (``trainable=False``, also through its model) always runs in inference mode: it uses the
    moving statistics and never changes them, Keras' rule for fine-tuning a frozen base.

    Shape
    -----
    Unchanged; input ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.
    """

    family = "norm"

    def __init__(
        self,
        axis: int = 1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis not in (1, -1):
            raise ValueError(
                f"{w}: axis must be 1 (channels first) or -1 (channels last), got {axis!r}"
            )
        for arg, v, low in (("momentum", momentum, 0.0), ("epsilon", epsilon, 0.0)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v >= low:
                raise ValueError(f"{w}: {arg} must be a number >= {low}, got {v!r}")
        if momentum > 1:
            raise ValueError(
                f"{w}: momentum must be in [0, 1] (Keras' convention: the weight "
                f"of the old moving average), got {momentum}"
            )
        if epsilon == 0:
            raise ValueError(f"{w}: epsilon must be > 0, got {epsilon}")
        check_args(
            w,
            {
                "beta_initializer": beta_initializer,
                "gamma_initializer": gamma_initializer,
                "moving_mean_initializer": moving_mean_initializer,
                "moving_variance_initializer": moving_variance_initializer,
            },
            {"beta_regularizer": beta_regularizer, "gamma_regularizer": gamma_regularizer},
            {"beta_constraint": beta_constraint, "gamma_constraint": gamma_constraint},
        )
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self._args = dict(
            beta=(beta_initializer, beta_regularizer, beta_constraint),
            gamma=(gamma_initializer, gamma_regularizer, gamma_constraint),
            mean=moving_mean_initializer,
            var=moving_variance_initializer,
        )
        self._channels: int | None = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"{self.where}: expects at least (batch, channels), got input shape "
                f"{fmt_shape(input_shape)}"
            )
        check_channels(self, input_shape, self.axis, self._channels, "channels")
        return input_shape

    def build(self, input_shape) -> None:
        c = int(input_shape[self.axis])
        self._channels = c
        self.gamma = self.beta = None
        if self.scale:
            init, reg, con = self._args["gamma"]
            self.gamma = self.add_weight("gamma", (c,), init, True, reg, con)
        if self.center:
            init, reg, con = self._args["beta"]
            self.beta = self.add_weight("beta", (c,), init, True, reg, con)
        self.moving_mean = self.add_weight("moving_mean", (c,), self._args["mean"], False)
        self.moving_variance = self.add_weight("moving_variance", (c,), self._args["var"], False)

    def call(self, x, training: bool = False):
        if training and self.trainable and x.size <= x.shape[self.axis]:
            raise ValueError(
                f"{self.where}: training needs more than 1 value per channel to take batch "
                f"statistics, got input shape {x.shape} ({x.size // x.shape[self.axis]} per "
                "channel). Use a "
                "batch of at least 2 samples, or call the model with training=False."
            )
        last = self.axis == -1 and x.ndim > 2
        if last:
            x = x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))
        y = F.batch_norm(
            x,
            self.moving_mean,
            self.moving_variance,
            self.gamma,
            self.beta,
            training=training and self.trainable,
            momentum=1.0 - self.momentum,
            eps=self.epsilon,
        )
        if last:
            y = y.permute(0, *range(2, y.ndim), 1)
        return y

    def describe(self) -> str:
        return ""


class LocalResponseNormalization(Layer):
    """Local response normalization across channels (AlexNet, GoogLeNet), PyTorch's formula:
    ``b_c = a_c / (k + alpha/size · Σ a²)^beta`` over ``size`` neighbouring channels.
    AlexNet's paper uses ``size=5, alpha=1e-4, beta=0.75, k=2``.

    Shape
    -----
    Unchanged, ``(N, C, H, W)``.
    """

    family = "norm"

    def __init__(
        self,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 1.0,
        name: str | None = None,
        trainable: bool = True,
    ):
        super().__init__(name=name, trainable=trainable)
        w = self.where
        self.size = positive_int(w, "size", size)
        for arg, v in (("alpha", alpha), ("beta", beta), ("k", k)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v >= 0:
                raise ValueError(f"{w}: {arg} must be a number >= 0, got {v!r}")
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"{self.where}: expects (batch, channels, ...), got input shape "
                f"{fmt_shape(input_shape)}"
            )
        return input_shape

    def call(self, x, training: bool = False):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def describe(self) -> str:
        return f"n={self.size}"
