"""``compile``, ``fit``, ``evaluate``, ``predict``: Keras' training API over any model with
``model(x, training=)``, ``parameters()``, ``losses``, ``state_dict()``/``load_state_dict()``,
optionally ``device`` (``tinycnn.Model`` delegates its methods here with itself as the first
argument)."""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from typing import Any

import numpy as np

from .. import optim
from .. import random as tc_random
from ..autograd import no_grad
from ..tensor import Tensor
from . import losses as losses_mod
from . import metrics as metrics_mod
from .callbacks import CallbackList
from .data import check_inputs, check_sample_weight, check_targets, input_spec, split_validation
from .history import History
from .progress import Progress, resolve_verbose

__all__ = ["compile", "evaluate", "fit", "predict"]

_OPTIMIZERS = {  # Keras' string names, with Keras' default hyper-parameters
    "adam": lambda: optim.Adam.keras(None),
    "adamw": lambda: optim.AdamW(None, lr=1e-3, weight_decay=4e-3, eps=1e-7, eps_mode="keras"),
    "sgd": lambda: optim.SGD(None, lr=0.01),
    "rmsprop": lambda: optim.RMSprop(None, lr=1e-3, alpha=0.9, eps=1e-7),
}


class _Config:
    def __init__(self, optimizer, loss, metric_ids):
        self.optimizer = optimizer
        self.loss = loss
        self.metric_ids = metric_ids


def compile(model, optimizer="adam", loss=None, metrics=None) -> None:  # noqa: A001 - Keras' name
    """Configure ``model`` for :func:`fit`.

    Parameters
    ----------
    optimizer : str or tinycnn.optim.Optimizer
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"`` (Keras' defaults), or an optimizer,
        e.g. ``tc.optim.Adam(1e-3)``; one built without parameters gets ``model.parameters()``.
    loss : str or tinycnn.train.losses.Loss
        ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``,
        ``"binary_crossentropy"``, ``"mse"``.
    metrics : list of str or Metric, optional
        ``"accuracy"``, ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
        ``"top_k_categorical_accuracy"``, ``TopKAccuracy(k)``, ...
    """
    if loss is None:
        raise ValueError("compile: a loss is required, e.g. loss='categorical_crossentropy'")
    loss_obj = losses_mod.get(loss)
    if isinstance(optimizer, str):
        if optimizer.lower() not in _OPTIMIZERS:
            raise ValueError(
                f"compile: unknown optimizer {optimizer!r}; valid names: {', '.join(_OPTIMIZERS)} "
                "(or a tinycnn.optim optimizer)"
            )
        optimizer = _OPTIMIZERS[optimizer.lower()]()
    if not isinstance(optimizer, optim.Optimizer):
        raise TypeError(
            f"compile: optimizer must be a name or a tinycnn.optim optimizer, got "
            f"{type(optimizer).__name__}"
        )
    if not optimizer.params and model.parameters():  # a frozen model compiles for evaluate
        optimizer.bind(model.parameters())
    metric_ids = list(metrics or [])
    for m in metric_ids:  # fail at compile time on a bad name
        metrics_mod.get(m, loss_obj.name)
    model.optimizer = optimizer
    model.loss = loss_obj
    model._train_config = _Config(optimizer, loss_obj, metric_ids)
    model.stop_training = False


def _config(model, what: str) -> _Config:
    cfg = getattr(model, "_train_config", None)
    if cfg is None:
        raise RuntimeError(
            f"{what}: compile the model first: model.compile(optimizer=..., "
            "loss=..., metrics=[...])"
        )
    shapes = getattr(model, "output_shape", None)
    if isinstance(shapes, list):
        from ..graph.shapes import fmt_shape

        raise NotImplementedError(
            f"{what}: models with several outputs ({len(shapes)}: "
            f"{', '.join(fmt_shape(s) for s in shapes)}) need a loss and a target per "
            "output, which is not supported yet; train a model with one output (predict "
            "takes several: it returns one array per output)"
        )
    return cfg


# --------------------------------------------------------------------- fused output activation
def _fusable_layer(model, activation: str | None):
    """``(kind, layer)`` when the model's output layer applies ``activation`` in a way the
    loop can switch off, else None (see :mod:`tinycnn.train.losses`)."""
    if activation is None:
        return None
    layer = None
    outputs = getattr(model, "outputs", None)
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        layer = getattr(getattr(outputs[0], "node", None), "layer", None)
    if layer is None:
        layers = getattr(model, "layers", None)
        layer = layers[-1] if layers else None
    if layer is None:
        return None
    if getattr(layer, "activation_name", None) == activation and callable(
        getattr(layer, "activation", None)
    ):
        return ("activation", layer)
    if activation == "softmax" and type(layer).__name__ == "Softmax":
        if getattr(layer, "axis", -1) == -1:
            return ("call", layer)
    return None


def _identity(x, *args, **kwargs):
    return x


@contextlib.contextmanager
def _without_output_activation(fused):
    if fused is None:
        yield
        return
    kind, layer = fused
    if kind == "activation":
        saved = layer.activation
        layer.activation = _identity
        try:
            yield
        finally:
            layer.activation = saved
    else:
        layer.call = _identity  # an instance attribute shadowing the method
        try:
            yield
        finally:
            del layer.call


# --------------------------------------------------------------------------------- helpers
def _resolve_metrics(cfg: _Config, y: np.ndarray, n_outputs: int) -> list:
    return [metrics_mod.get(m, cfg.loss.name, y.ndim, n_outputs) for m in cfg.metric_ids]


def _check_batch_size(where: str, batch_size) -> None:
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(f"{where}: batch_size must be a positive int, got {batch_size!r}")


def _batches(n: int, batch_size: int, order: np.ndarray | None):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield (slice(start, stop) if order is None else order[start:stop]), stop - start


def _regularized(model, loss: Tensor) -> Tensor:
    extra = getattr(model, "losses", None) or []
    for term in extra:
        loss = loss + term
    return loss


def sample_weights(loss, y: np.ndarray, class_weight, outputs: int, dtype) -> np.ndarray:
    """Each training sample's weight from ``fit``'s ``class_weight`` (see :func:`fit`), for a
    model with ``outputs`` outputs."""
    classes = loss.classes_of(y)
    n_cls = loss.class_count(outputs)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(
                f"fit: class_weight must be a dict {{class: weight}} or 'balanced', got "
                f"{class_weight!r}"
            )
        counts = np.bincount(classes, minlength=n_cls)
        present = int((counts > 0).sum())  # scikit-learn counts the classes y holds
        table = {c: len(classes) / (present * counts[c]) for c in range(n_cls) if counts[c]}
    elif isinstance(class_weight, dict):
        table = {}
        for key, value in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
                raise TypeError(f"fit: class_weight keys are class indices, got {key!r}")
            if not 0 <= key < n_cls:
                raise ValueError(
                    f"fit: class_weight names class {key}, but the model tells {n_cls} "
                    f"classes apart (0..{n_cls - 1})"
                )
            if not isinstance(value, (int, float, np.floating, np.integer)) or not (
                math.isfinite(value) and value >= 0
            ):
                raise ValueError(
                    f"fit: class_weight[{key}] must be a finite number >= 0, got {value!r}"
                )
            table[int(key)] = float(value)
    else:
        raise TypeError(
            f"fit: class_weight must be a dict {{class: weight}} or 'balanced', got "
            f"{type(class_weight).__name__}"
        )
    lookup = np.array([table.get(c, 1.0) for c in range(n_cls)])
    return lookup[classes].astype(dtype)


def _device(model) -> str:
    """Where the inputs go: ``model.device`` (a ``tinycnn.Model``: its weights' device, frozen
    ones included), else that of its first parameter."""
    device = getattr(model, "device", None)
    if device is None:
        params = model.parameters()
        device = params[0].device if params else "cpu"
    return device


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


def _run_eval(model, cfg, x, y, batch_size, metrics, fused) -> dict[str, float]:
    total, count = 0.0, 0
    for m in metrics:
        m.reset()
    logits = fused is not None or cfg.loss.from_logits
    device = _device(model)
    with no_grad(), _without_output_activation(fused):
        for idx, nb in _batches(len(x), batch_size, None):
            out = model(Tensor(x[idx], device=device), training=False)
            yb = Tensor(y[idx], device=device)
            total += float(_regularized(model, cfg.loss(out, yb, logits)).item()) * nb
            count += nb
            for m in metrics:
                m.update(out, yb, logits)
    logs = {"loss": total / max(count, 1)}
    logs.update({m.name: m.result() for m in metrics})
    return logs


# --------------------------------------------------------------------------------------- fit
def fit(
    model,
    x=None,
    y=None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_split: float = 0.0,
    validation_data=None,
    shuffle: bool = True,
    callbacks=None,
    verbose="auto",
    initial_epoch: int = 0,
    seed: int | None = None,
    augment=None,
    class_weight=None,
    sample_weight=None,
) -> History:
    """Train ``model`` on ``x``, ``y`` (NumPy arrays or Tensors) for epochs ``initial_epoch ..
    epochs - 1``; returns a :class:`History`.

    ``validation_split`` holds out the *last* fraction of the samples, before any shuffling
    (Keras' rule); ``validation_data=(x_val, y_val)`` takes precedence.  ``seed`` makes the run
    repeat exactly: epoch ``e`` draws its shuffle order and dropout masks from a generator
    seeded by ``(seed, e)``, so a run resumed at epoch ``k`` from a checkpoint continues as the
    uninterrupted run did.  Without ``seed``, the global generator (``tc.manual_seed``) is used.

    ``augment`` (a tinycnn extension) is a callable ``(x_batch, rng) -> x_batch`` applied to
    each training batch, e.g. :class:`tinycnn.train.augment.RandomTranslation`.

    ``class_weight`` (Keras'): ``{class index: weight}`` (classes not named weigh 1), or
    ``"balanced"`` (``n / (classes · count)``, scikit-learn's rule).  Each training sample's
    loss is scaled by its class's weight and the batch's sum divided by the batch size, as
    Keras does; validation loss and metrics stay unweighted.  ``sample_weight`` (Keras', an
    array ``(N,)`` of numbers >= 0, one per sample of ``x``) weighs samples the same way; with
    both, the two weights multiply.

    Data is checked before the first step: NaN/Inf, x/y length mismatch, a per-sample shape the
    model does not take, labels out of range for the model's outputs.
    """
    cfg = _config(model, "fit")
    if not cfg.optimizer.params:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f'fit: model "{name}" has no trainable weights (every layer that has weights '
            "is frozen: trainable=False), so there is nothing to train; set trainable=True on "
            "the layers to train and compile again, or use evaluate/predict"
        )
    if augment is not None and not callable(augment):
        raise TypeError(f"fit: augment must be callable(x_batch, rng), got {augment!r}")
    if (
        not isinstance(epochs, int)
        or not isinstance(initial_epoch, int)
        or epochs < 0
        or initial_epoch < 0
    ):
        raise ValueError(
            f"fit: epochs and initial_epoch must be ints >= 0, got {epochs!r}, {initial_epoch!r}"
        )
    _check_batch_size("fit", batch_size)
    spec = input_spec(model)
    x = check_inputs("fit", x, spec)
    if sample_weight is not None:
        sample_weight = check_sample_weight("fit", sample_weight, len(x))
    if validation_data is None and validation_split:
        x, y, val_x, val_y = split_validation(x, y, validation_split)
        if sample_weight is not None:  # the held-out last samples' weights are not used
            sample_weight = sample_weight[: len(x)]
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
        val_x = check_inputs("fit: validation_data", validation_data[0], spec)
        val_y = validation_data[1]
    else:
        val_x = val_y = None
    output_shape = _output_shape(model, x)
    y = check_targets("fit", cfg.loss, x, y, output_shape, spec.dtype)
    weights = (
        None
        if class_weight is None
        else sample_weights(cfg.loss, y, class_weight, output_shape[-1], spec.dtype)
    )
    if sample_weight is not None:
        weights = (sample_weight if weights is None else weights * sample_weight).astype(spec.dtype)
    if val_x is not None:
        val_y = check_targets("fit: validation", cfg.loss, val_x, val_y, output_shape, spec.dtype)
    train_metrics = _resolve_metrics(cfg, y, output_shape[-1])
    val_metrics = _resolve_metrics(cfg, y, output_shape[-1])
    fused = None if cfg.loss.from_logits else _fusable_layer(model, cfg.loss.fused_activation)
    logits = fused is not None or cfg.loss.from_logits

    n = len(x)
    steps = math.ceil(n / batch_size)
    verbose = resolve_verbose(verbose)
    history = History()
    history.params = {
        "epochs": epochs,
        "steps": steps,
        "batch_size": batch_size,
        "samples": n,
        "verbose": verbose,
    }
    progress = Progress(verbose, epochs, steps, batch_size)
    cbs = CallbackList([history_callback(history), *(callbacks or [])], model, history.params)
    optimizer = cfg.optimizer
    device = _device(model)
    constrain = getattr(model, "apply_constraints", None)
    model.stop_training = False
    first_step = True
    logs: dict[str, float] = {}
    cbs.on_train_begin(logs)
    try:
        for epoch in range(initial_epoch, epochs):
            if seed is not None:
                gen = tc_random.manual_seed(_epoch_seed(seed, epoch))
            else:
                gen = tc_random.default_generator()
            order = gen.permutation(n) if shuffle else None
            for m in train_metrics:
                m.reset()
            cbs.on_epoch_begin(epoch, {})
            progress.epoch_begin(epoch)
            total, count = 0.0, 0
            timed_seconds, timed_steps, timed_samples = 0.0, 0, 0
            t_epoch = time.perf_counter()
            t_first = None
            for step, (idx, nb) in enumerate(_batches(n, batch_size, order)):
                t0 = time.perf_counter()
                cbs.on_train_batch_begin(step, {})
                xb_np = x[idx] if augment is None else augment(x[idx], gen)
                xb, yb = Tensor(xb_np, device=device), Tensor(y[idx], device=device)
                wb = None if weights is None else Tensor(weights[idx], device=device)
                optimizer.zero_grad()
                with _without_output_activation(fused):
                    out = model(xb, training=True)
                raw = (
                    cfg.loss(out, yb, logits)
                    if wb is None
                    else cfg.loss.weighted(out, yb, logits, wb)
                )
                loss = _regularized(model, raw)
                loss.backward()
                optimizer.step()
                if constrain is not None:
                    constrain()
                value = float(loss.item())
                total += value * nb
                count += nb
                for m in train_metrics:
                    m.update(out, yb, logits)
                dt = time.perf_counter() - t0
                if first_step and step == 0:
                    t_first = dt  # kernel compilation, reported apart
                else:
                    if first_step and step == 1:
                        if t_first > 0.25 and t_first > 3 * dt:
                            history.compile_seconds = t_first - dt
                            progress.compiled(t_first - dt)
                        first_step = False
                    timed_seconds += dt
                    timed_steps += 1
                    timed_samples += nb
                running = {"loss": total / count}
                running.update({m.name: m.result() for m in train_metrics})
                progress.step(running, timed_steps, timed_samples, timed_seconds)
                cbs.on_train_batch_end(step, {**running, "batch_loss": value})
                if model.stop_training:
                    break
            if timed_steps == 0 and t_first is not None:  # a one-step epoch: time it anyway
                timed_seconds, timed_steps, timed_samples = t_first, 1, count
                first_step = False
            seconds = time.perf_counter() - t_epoch
            logs = {"loss": total / max(count, 1)}
            logs.update({m.name: m.result() for m in train_metrics})
            if val_x is not None:
                val = _run_eval(model, cfg, val_x, val_y, batch_size, val_metrics, fused)
                logs.update({"val_" + k: v for k, v in val.items()})
            cbs.on_epoch_end(epoch, logs)
            history.append(epoch, logs, seconds)
            progress.epoch_end(epoch, logs, seconds, timed_steps, timed_samples, timed_seconds)
            if model.stop_training:
                break
    finally:
        progress.close()
        cbs.on_train_end(logs)
    return history


def history_callback(history: History):
    """Callbacks see the History as Keras' do (``model.history``)."""
    from .callbacks import Callback

    class _HistoryCallback(Callback):
        def set_model(self, model):
            super().set_model(model)
            model.history = history

    return _HistoryCallback()


def _output_shape(model, x: np.ndarray) -> tuple:
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, tuple) and shape and all(isinstance(s, int) for s in shape[1:]):
        return tuple(shape)
    with no_grad():  # a model without static shapes: ask it, on one sample
        out = model(Tensor(x[:1], device=_device(model)), training=False)
    return (None, *out.shape[1:])


# ---------------------------------------------------------------------------- evaluate etc.
def evaluate(
    model, x=None, y=None, batch_size: int = 32, verbose="auto", return_dict: bool = False
) -> Any:
    """The loss (plus metrics) on ``x``, ``y``, in inference mode: a float when there are no
    metrics, else ``[loss, *metrics]`` (or a dict with ``return_dict``), as Keras."""
    cfg = _config(model, "evaluate")
    _check_batch_size("evaluate", batch_size)
    spec = input_spec(model)
    x = check_inputs("evaluate", x, spec)
    output_shape = _output_shape(model, x)
    y = check_targets("evaluate", cfg.loss, x, y, output_shape, spec.dtype)
    metrics = _resolve_metrics(cfg, y, output_shape[-1])
    fused = None if cfg.loss.from_logits else _fusable_layer(model, cfg.loss.fused_activation)
    t0 = time.perf_counter()
    logs = _run_eval(model, cfg, x, y, batch_size, metrics, fused)
    verbose = resolve_verbose(verbose)
    if verbose:
        from .progress import format_logs

        print(
            f"evaluate: {len(x)} samples - {time.perf_counter() - t0:.2f} s - {format_logs(logs)}",
            flush=True,
        )
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def predict(model, x, batch_size: int = 32, verbose=0) -> np.ndarray | list[np.ndarray]:
    """The model's outputs on ``x`` (inference mode, batched, under ``no_grad``) as one
    NumPy array, or one per output for a model with several (as Keras); the output
    activation is kept (probabilities for a softmax model)."""
    _check_batch_size("predict", batch_size)
    spec = input_spec(model)
    x = check_inputs("predict", x, spec)
    shapes = getattr(model, "output_shape", None)
    several = isinstance(shapes, list)
    outs = [[] for _ in shapes] if several else [[]]
    device = _device(model)
    with no_grad():
        for idx, _ in _batches(len(x), batch_size, None):
            got = model(Tensor(x[idx], device=device), training=False)
            for part, out in zip(outs, got if several else [got]):
                part.append(out.numpy())
    arrays = [np.concatenate(part) if part else np.empty((0,), spec.dtype) for part in outs]
    return arrays if several else arrays[0]
