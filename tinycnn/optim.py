"""Optimizers with PyTorch's update rules: SGD, Adam, AdamW, RMSprop.

Each ``step`` is one fused kernel call per parameter (``tinycnn/ops/<device>/optim.py``:
``sgd_step``, ``adam_step``, ``rmsprop_step``) that updates the parameter and its state in
place, with no temporaries.  Hyper-parameters are cast to the parameter's dtype before the
call, so a float32 model is updated in float32 arithmetic as in PyTorch, and the tests compare
every option step by step with ``torch.optim``.

Keras users: PyTorch's and Keras' Adam share ``lr=1e-3`` and the betas, but not epsilon:
torch's ``eps=1e-8`` is added to ``sqrt(v_hat)`` (the bias-corrected second moment, Algorithm 1
of the Adam paper), Keras' ``epsilon=1e-7`` is added to ``sqrt(v)`` before the bias correction
is folded into the step size (the paper's "epsilon hat"; ``keras/src/optimizers/adam.py``).
``Adam.keras(params)`` gives Keras' defaults *and* its formula; ``Adam(params, eps=1e-7)`` only
the value.  The two differ only while ``sqrt(v)`` is comparable to epsilon.

Construction takes PyTorch's form, ``Adam(model.parameters(), lr=1e-3)``, or Keras' form,
``Adam(1e-3)``, whose parameters ``model.compile(optimizer=...)`` binds later.

The state is plain arrays: ``state_dict()`` returns ``{"optimizer", "hyper", "state"}`` where
``state`` maps ``"<param index>.<buffer>"`` to NumPy arrays (no pickle needed to save it).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .device import get_backend, get_kernels
from .tensor import Tensor

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop"]


def _lr_first(cls: str, params, lr, default: float):
    """Keras-style ``Adam(1e-3)``: a number where the parameters go is the learning rate."""
    if isinstance(params, numbers.Real) and not isinstance(params, bool):
        if lr != default:
            raise TypeError(f"{cls}: got a learning rate twice ({params} and lr={lr})")
        return None, params
    return params, lr


def _hyper(
    cls: str,
    name: str,
    value: Any,
    low: float = 0.0,
    high: float | None = None,
    high_open: bool = False,
) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{cls}: {name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{cls}: {name} must be finite, got {value}")
    if value < low:
        raise ValueError(f"{cls}: {name} must be >= {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        rule = "<" if high_open else "<="
        raise ValueError(f"{cls}: {name} must be {rule} {high}, got {value}")
    return value


class Optimizer:
    """Base class: a list of parameters, per-parameter state, and hyper-parameters.

    Subclasses set ``_buffers`` (the state arrays each parameter gets) and implement
    ``_update(p, state, grad)``.
    """

    _buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor] | None, hyper: dict[str, Any]) -> None:
        self.hyper = dict(hyper)
        self.params: list[Tensor] = []
        self.state: list[dict[str, Any]] = []
        if params is not None:
            self.bind(params)

    def bind(self, params: Iterable[Tensor]) -> Optimizer:
        """Give the optimizer its parameters (``compile`` does this for an optimizer built
        without them, Keras-style: ``tc.optim.Adam(1e-3)``); resets the state."""
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors, got a single Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        seen: set[int] = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: params[{i}] is a {type(p).__name__}, not a Tensor")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: params[{i}] has dtype {p.dtype}; must be float")
            if id(p) in seen:
                raise ValueError(f"{name}: params[{i}] appears twice in the parameter list")
            seen.add(id(p))
        self.params = params
        self.state = [{} for _ in params]
        return self

    # -------------------------------------------------------------------- hyper-parameters
    @property
    def lr(self) -> float:
        """The learning rate; assign to change it (schedules, ReduceLROnPlateau)."""
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = _hyper(type(self).__name__, "lr", value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"

    # ----------------------------------------------------------------------------- step
    def zero_grad(self) -> None:
        """Forget the gradients (set to None, as torch's default ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        if not self.params:
            raise RuntimeError(
                f"{type(self).__name__}: no parameters to update: pass them "
                f"({type(self).__name__}(model.parameters(), ...)) or compile a model with it"
            )
        loss = None
        if closure is not None:
            from .autograd import enable_grad

            with enable_grad():
                loss = closure()
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.dtype != p.dtype:
                raise TypeError(
                    f"{type(self).__name__}: params[{i}] is {p.dtype} but its gradient is "
                    f"{p.grad.dtype}"
                )
            if tuple(p.grad.shape) != tuple(p.shape):
                raise ValueError(
                    f"{type(self).__name__}.step: params[{i}] has shape {tuple(p.shape)} but its "
                    f"gradient has shape {tuple(p.grad.shape)}"
                )
            B = get_backend(p.device)
            p.data = B.contiguous(p.data)  # the kernel updates the flat view in place
            state = self._state_of(i)
            state["step"] = state.get("step", 0) + 1
            fresh = set()  # buffers created now (also: an option switched on after a load)
            for buf in self._active_buffers():
                if buf not in state:
                    state[buf] = B.zeros(p.shape, p.dtype)
                    fresh.add(buf)
            grad = B.contiguous(p.grad.data).reshape(-1)
            flat = {k: v.reshape(-1) for k, v in state.items() if k != "step"}
            K = get_kernels(p.device, "optim")
            self._update(p.data.reshape(-1), grad, flat, fresh, state["step"], p.dtype.type, K)
        return loss

    def _active_buffers(self) -> tuple[str, ...]:
        return self._buffers

    def _state_of(self, i: int) -> dict[str, Any]:
        """``self.state[i]``, its buffers on the device of ``params[i]``: ``Model.to`` moves the
        parameters (a resumed run: ``load_checkpoint`` on the CPU, then ``.to("cuda")``), and
        the state follows them here."""
        p, state = self.params[i], self.state[i]
        for key, value in state.items():
            on_host = isinstance(value, np.ndarray)
            if key != "step" and on_host != (p.device == "cpu"):
                host = value if on_host else get_backend("cuda").to_numpy(value)
                state[key] = get_backend(p.device).from_numpy(np.ascontiguousarray(host))
        return state

    def _update(self, p, g, state, fresh, step, t, K) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer": name, "hyper": {...}, "state": {"<i>.<buffer>": ndarray}}`` (copies)."""
        arrays: dict[str, np.ndarray] = {}
        for i, p in enumerate(self.params):
            for key, value in self._state_of(i).items():
                if key == "step":
                    arrays[f"{i}.step"] = np.asarray(value, dtype=np.int64)
                else:
                    host = get_backend(p.device).to_numpy(value)
                    arrays[f"{i}.{key}"] = np.array(host, copy=True)
        hyper = {k: list(v) if isinstance(v, tuple) else v for k, v in self.hyper.items()}
        return {"optimizer": type(self).__name__, "hyper": hyper, "state": arrays}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; checks the optimizer type, the number of
        parameters, and every buffer's name, shape and dtype before changing anything."""
        name = type(self).__name__
        got = state_dict.get("optimizer")
        if got != name:
            raise ValueError(f"{name}.load_state_dict: the state is of a {got} optimizer")
        new_state: list[dict[str, Any]] = [{} for _ in self.params]
        for key, value in state_dict.get("state", {}).items():
            index, _, buf = key.partition(".")
            if not index.isdigit() or int(index) >= len(self.params):
                raise ValueError(
                    f"{name}.load_state_dict: state entry {key!r} does not match this optimizer's "
                    f"{len(self.params)} parameters"
                )
            p = self.params[int(index)]
            value = np.asarray(value)
            if buf == "step":
                if value.ndim != 0 or value.dtype.kind not in "iu" or int(value) < 0:
                    raise ValueError(
                        f"{name}.load_state_dict: {key} must be an integer >= 0, got {value!r}"
                    )
                new_state[int(index)]["step"] = int(value)
                continue
            if buf not in self._buffers:
                raise ValueError(f"{name}.load_state_dict: unknown buffer {key!r}")
            if value.shape != p.shape or value.dtype != p.dtype:
                raise ValueError(
                    f"{name}.load_state_dict: {key} has shape {value.shape} dtype {value.dtype}, "
                    f"but params[{index}] has shape {p.shape} dtype {p.dtype}"
                )
            new_state[int(index)][buf] = get_backend(p.device).from_numpy(np.array(value))
        hyper = dict(self.hyper)
        for key, value in state_dict.get("hyper", {}).items():
            if key not in hyper:
                raise ValueError(f"{name}.load_state_dict: unknown hyper-parameter {key!r}")
            hyper[key] = tuple(value) if isinstance(value, (list, tuple)) else value
        try:  # the constructor's rules: a NaN lr or a single beta is refused here, not in step
            checked = type(self)(None, **hyper)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}.load_state_dict: bad hyper-parameters: {exc}") from None
        for i, state in enumerate(new_state):
            if state and "step" not in state:
                raise ValueError(f"{name}.load_state_dict: params[{i}] has buffers but no step")
            missing = [b for b in checked._active_buffers() if state and b not in state]
            if missing:
                raise ValueError(
                    f"{name}.load_state_dict: params[{i}] has a step but no {', '.join(missing)}"
                )
        self.hyper = checked.hyper
        self.state = new_state


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's ``torch.optim.SGD``: with ``d = g + wd*p``,
    ``buf = momentum*buf + (1 - dampening)*d`` (``buf = d`` on the first step),
    ``p -= lr * (d + momentum*buf if nesterov else buf)``."""

    _buffers = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor] | float | None = None,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        params, lr = _lr_first("SGD", params, lr, 1e-3)
        hyper = {
            "lr": _hyper("SGD", "lr", lr),
            "momentum": _hyper("SGD", "momentum", momentum),
            "dampening": _hyper("SGD", "dampening", dampening),
            "weight_decay": _hyper("SGD", "weight_decay", weight_decay),
            "nesterov": bool(nesterov),
        }
        if nesterov and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov momentum requires momentum > 0 and dampening == 0, got "
                f"momentum={momentum}, dampening={dampening}"
            )
        super().__init__(params, hyper)

    def _active_buffers(self) -> tuple[str, ...]:
        return self._buffers if self.hyper["momentum"] != 0 else ()

    def _update(self, p, g, state, fresh, step, t, K) -> None:
        h = self.hyper
        buf = state.get("momentum_buffer")
        first = "momentum_buffer" in fresh
        K.sgd_step(
            p,
            g,
            p if buf is None else buf,
            t(h["lr"]),
            t(h["momentum"]),
            t(1.0 - h["dampening"]),
            t(h["weight_decay"]),
            h["nesterov"],
            first,
        )


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's ``torch.optim.Adam`` and defaults (``lr=1e-3``,
    ``betas=(0.9, 0.999)``, ``eps=1e-8``; ``weight_decay`` adds ``wd*p`` to the gradient).

    ``eps_mode="keras"`` adds ``eps`` to ``sqrt(v)`` instead of to ``sqrt(v_hat)``, Keras'
    formula; :meth:`Adam.keras` also takes Keras' argument names and ``epsilon=1e-7``.
    """

    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(
        self,
        params: Iterable[Tensor] | float | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        eps_mode: str = "torch",
    ) -> None:
        cls = type(self).__name__
        params, lr = _lr_first(cls, params, lr, 1e-3)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{cls}: betas must be a pair (beta1, beta2), got {betas!r}")
        if eps_mode not in ("torch", "keras"):
            raise ValueError(f"{cls}: eps_mode must be 'torch' or 'keras', got {eps_mode!r}")
        hyper = {
            "lr": _hyper(cls, "lr", lr),
            "betas": (
                _hyper(cls, "betas[0]", betas[0], high=1.0, high_open=True),
                _hyper(cls, "betas[1]", betas[1], high=1.0, high_open=True),
            ),
            "eps": _hyper(cls, "eps", eps),
            "weight_decay": _hyper(cls, "weight_decay", weight_decay),
            "amsgrad": bool(amsgrad),
            "eps_mode": eps_mode,
        }
        super().__init__(params, hyper)

    @classmethod
    def keras(
        cls,
        params: Iterable[Tensor] | None = None,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ) -> Adam:
        """Keras 3's ``keras.optimizers.Adam``: its argument names, defaults and formula
        (``params`` may come later, from ``compile``)."""
        return cls(
            params,
            lr=learning_rate,
            betas=(beta_1, beta_2),
            eps=epsilon,
            amsgrad=amsgrad,
            eps_mode="keras",
        )

    def _active_buffers(self) -> tuple[str, ...]:
        return self._buffers if self.hyper["amsgrad"] else self._buffers[:2]

    def _update(self, p, g, state, fresh, step, t, K) -> None:
        h = self.hyper
        beta1, beta2 = h["betas"]
        lr = h["lr"]
        bc1 = 1.0 - beta1**step
        bc2_sqrt = math.sqrt(1.0 - beta2**step)
        eps = h["eps"] / bc2_sqrt if h["eps_mode"] == "keras" else h["eps"]
        if self._decoupled:
            wd, decay = 0.0, 1.0 - lr * h["weight_decay"]
        else:
            wd, decay = h["weight_decay"], 1.0
        vmax = state.get("max_exp_avg_sq")
        K.adam_step(
            p,
            g,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["exp_avg_sq"] if vmax is None else vmax,
            t(lr / bc1),
            t(1.0 - beta1),
            t(beta2),
            t(1.0 - beta2),
            t(bc2_sqrt),
            t(eps),
            t(wd),
            t(decay),
            h["amsgrad"],
        )


class AdamW(Adam):
    """Adam with decoupled weight decay, PyTorch's ``torch.optim.AdamW`` (``weight_decay=1e-2``:
    ``p *= 1 - lr*wd`` before the Adam step)."""

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Tensor] | float | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        eps_mode: str = "torch",
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, eps_mode)


class RMSprop(Optimizer):
    """RMSprop, PyTorch's ``torch.optim.RMSprop`` and defaults (``lr=1e-2``, ``alpha=0.99``,
    ``eps=1e-8``, ``momentum``, ``centered``).  (Keras' RMSprop defaults differ: ``lr=1e-3``,
    ``rho=0.9``, ``epsilon=1e-7``.)"""

    _buffers = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(
        self,
        params: Iterable[Tensor] | float | None = None,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        params, lr = _lr_first("RMSprop", params, lr, 1e-2)
        hyper = {
            "lr": _hyper("RMSprop", "lr", lr),
            "alpha": _hyper("RMSprop", "alpha", alpha, high=1.0),
            "eps": _hyper("RMSprop", "eps", eps),
            "weight_decay": _hyper("RMSprop", "weight_decay", weight_decay),
            "momentum": _hyper("RMSprop", "momentum", momentum),
            "centered": bool(centered),
        }
        super().__init__(params, hyper)

    def _active_buffers(self) -> tuple[str, ...]:
        h = self.hyper
        return (
            ("square_avg",)
            + (("grad_avg",) if h["centered"] else ())
            + (("momentum_buffer",) if h["momentum"] > 0 else ())
        )

    def _update(self, p, g, state, fresh, step, t, K) -> None:
        h = self.hyper
        sq = state["square_avg"]
        K.rmsprop_step(
            p,
            g,
            sq,
            state.get("grad_avg", sq),
            state.get("momentum_buffer", sq),
            t(h["lr"]),
            t(h["alpha"]),
            t(1.0 - h["alpha"]),
            t(h["eps"]),
            t(h["weight_decay"]),
            t(h["momentum"]),
            h["centered"],
        )
