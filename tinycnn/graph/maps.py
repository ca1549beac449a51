"""Feature maps of one image: what each layer of a model computes, drawn as a grid of images.

One row per layer: its name, output size and receptive field, then its strongest channels
(the largest mean absolute activation over the image), each scaled to its own range.  Early
rows look like the input run through edge and stroke filters; deeper rows are smaller and
coarser, each pixel seeing more of the input (its receptive field).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .model import image_output

# More rows than this are thinned to evenly spaced layers (a ResNet has ~170 image outputs).
MAX_ROWS = 12


def _hw_planes(a: np.ndarray, channels_last: bool) -> np.ndarray:
    """``(C, H, W)`` planes of one sample's output."""
    return np.moveaxis(a, -1, 0) if channels_last else a


def pick_layers(model, layers=None) -> tuple[list[str], int]:
    """The layers to draw (default: the input, then every conv and pooling layer, thinned to
    :data:`MAX_ROWS`), and how many there were to choose from."""
    g = model.graph
    if layers is not None:
        names = [layers] if isinstance(layers, str) else list(layers)
        return names, len(names)
    names = [
        g.nodes[n]["name"]
        for n in g
        if g.nodes[n]["family"] in ("input", "conv", "pool") and image_output(g.nodes[n])
    ]
    total = len(names)
    if total > MAX_ROWS:
        keep = np.unique(np.linspace(0, total - 1, MAX_ROWS).round().astype(int))
        names = [names[i] for i in keep]
    return names, total


def plot_feature_maps(
    model,
    image: np.ndarray,
    path: str | os.PathLike,
    layers=None,
    channels: int = 8,
    title: str | None = None,
) -> Path:
    """Draw the feature maps of one ``image`` (one sample, without the batch axis) through
    ``model`` and save them to ``path`` (.png, .svg, .pdf).

    ``layers``: names to draw (default: see :func:`pick_layers`); ``channels``: how many of
    each layer's channels, the strongest first.  Needs matplotlib (``pip install
    tinycnn[plot]``); draws on a bare ``Figure``, never through pyplot."""
    from .._plotting import figure, image_cell, save
    from .explain import layouts
    from .receptive import receptive_fields

    if channels < 1:
        raise ValueError(f"plot_feature_maps: channels must be >= 1, got {channels}")
    names, _ = pick_layers(model, layers)
    maps = model.feature_maps(np.asarray(image)[None], names)
    g = model.graph
    by_name = {g.nodes[n]["name"]: n for n in g}
    fields = receptive_fields(model)
    layout = layouts(model)
    flat = [name for name in names if maps[name].ndim != 4]
    if flat:
        raise ValueError(
            f"plot_feature_maps: {', '.join(flat)} {'has' if len(flat) == 1 else 'have'} no "
            "spatial output to draw (only layers with (N, C, H, W) or (N, H, W, C) outputs)"
        )
    cols = 1 + channels
    fig = figure("plot_feature_maps", 1.25 * cols, 1.35 * len(names) + (0.5 if title else 0.1))
    for row, name in enumerate(names):
        planes = _hw_planes(maps[name][0], layout[by_name[name]])
        strength = np.abs(planes).reshape(len(planes), -1).mean(axis=1)
        order = np.argsort(-strength, kind="stable")[:channels]
        label = fig.add_subplot(len(names), cols, row * cols + 1)
        label.axis("off")
        c, h, w = planes.shape
        field = fields[by_name[name]]
        rf = "" if field.size is None else f"\nRF {field.size[0]}×{field.size[1]}"
        label.text(0.0, 0.5, f"{name}\n{h}×{w}×{c}{rf}", fontsize=7, va="center", ha="left")
        for k, ch in enumerate(order):
            ax = image_cell(fig, len(names), cols, row * cols + 1 + k, f"c{ch}", 6, 1)
            gray = g.nodes[by_name[name]]["family"] == "input"
            ax.imshow(planes[ch], cmap="gray" if gray else "viridis", interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path)


def plot_filters(
    model, path: str | os.PathLike, layer: str | None = None, title: str | None = None
) -> Path:
    """Draw the kernels of a conv layer that reads the image itself (default: the model's
    first ``Conv2D``) and save them to ``path``: one cell per filter, in grey for a 1-channel
    input, in colour for 3 channels, each scaled to its own range.  Deeper layers' kernels
    mix dozens of channels and are no picture; their feature maps are
    (:func:`plot_feature_maps`)."""
    from .._plotting import figure, image_cell, save

    g = model.graph
    convs = [g.nodes[n]["layer"] for n in g if g.nodes[n]["type"] == "Conv2D"]
    if layer is None:
        if not convs:
            raise ValueError(f'plot_filters: model "{model.name}" has no Conv2D layer')
        conv = convs[0]
    else:
        conv = model.get_layer(layer)
        if type(conv).__name__ != "Conv2D":
            kind = type(conv).__name__
            article = "an" if kind[0] in "AEIOU" else "a"
            raise ValueError(f"plot_filters: {layer} is {article} {kind} layer, not a Conv2D")
    kernel = conv.kernel.numpy()  # (filters, channels, kh, kw)
    if kernel.shape[1] not in (1, 3):
        raise ValueError(
            f"plot_filters: {conv.name} reads {kernel.shape[1]} channels; filters are drawn for "
            "a layer that reads the image (1 or 3 channels): draw its feature maps instead"
        )
    n = kernel.shape[0]
    cols = min(n, 8)
    rows = -(-n // cols)
    fig = figure("plot_filters", 1.1 * cols, 1.2 * rows + (0.5 if title else 0.1))
    for k in range(n):
        f = kernel[k]
        lo, hi = float(f.min()), float(f.max())
        f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
        ax = image_cell(fig, rows, cols, k, f"f{k}", 6, 1)
        if f.shape[0] == 3:
            ax.imshow(np.moveaxis(f, 0, -1), interpolation="nearest")
        else:
            ax.imshow(f[0], cmap="gray", interpolation="nearest")
    heading = f"{conv.name}: {n} filters of {kernel.shape[2]}×{kernel.shape[3]}"
    fig.suptitle(f"{title}, {heading}" if title else heading, fontsize=9)
    return save(fig, path)
