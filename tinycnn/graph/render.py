"""Architecture diagrams: DOT written straight from the model's networkx graph, rendered by
Graphviz' ``dot`` binary, run through the ``graphviz`` package (no pydot).

Nodes show name, type, key hyper-parameters, output shape and parameters, coloured by op family;
blocks are clusters; ``depth`` collapses deep blocks, ``collapse_repeated`` merges runs of
identical blocks, ``fold`` folds BN/activations into the conv before them.
"""

from __future__ import annotations

import html
import os
import shutil
import warnings
from pathlib import Path

from .views import Item, View, build_view

COLORS = {
    "input": "#e0e0e0",
    "conv": "#a8d1f0",
    "dense": "#f5c38a",
    "pool": "#b7e4b0",
    "norm": "#fbe89b",
    "activation": "#f4b6c2",
    "merge": "#d3c4ef",
    "reshape": "#eeeeee",
    "dropout": "#dddddd",
    "arith": "#f0d9b5",
    "model": "#c6dbef",
    "block": "#cfd8dc",
    "other": "#ffffff",
}
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".gv": None, ".dot": None}
MAX_NODES = 250
INSTALL = (
    "Graphviz' `dot` program is needed to render diagrams and was not found on PATH. "
    "Install it with one of:\n"
    "  sudo apt-get install graphviz      (Debian/Ubuntu)\n"
    "  brew install graphviz              (macOS)\n"
    "  conda install -c conda-forge graphviz\n"
    "then run again (or render the .gv file yourself: dot -Tsvg model.gv -o model.svg)."
)


class GraphvizNotFoundError(RuntimeError):
    """``dot`` is not installed; the message says how to install it."""


def _shape_text(shape) -> str:
    return "×".join(str(s) for s in shape[1:]) or "scalar"


def _label(item: Item, prefix: str, show_shapes: bool, show_params: bool) -> str:
    name = item.name
    if prefix and name.startswith(prefix + "/"):
        name = name[len(prefix) + 1 :]
    e = html.escape
    title = f"<b>{e(name)}</b>"
    lines = []
    if item.kind == "node":
        kind = item.type + ("".join(f"+{f}" for f in item.folded))
        lines.append(e(f"{kind} {item.describe}".strip()))
    else:
        lines.append(e(item.describe))
    if show_shapes:
        if item.kind == "node":
            shapes = ", ".join(_shape_text(s) for s in item.out_shapes)
        else:
            ins = ", ".join(_shape_text(s) for s in item.in_shapes)
            outs = ", ".join(_shape_text(s) for s in item.out_shapes)
            shapes = f"{ins} → {outs}"
        lines.append(e(shapes))
    if show_params and item.params:
        lines.append(f"{item.params:,} params")
    body = "<br/>".join([title] + [f'<font point-size="9">{x}</font>' for x in lines])
    return f"<{body}>"


def _choose_view(model, depth, collapse_repeated, fold, max_nodes) -> tuple[View, str]:
    view = build_view(model, depth, collapse_repeated, fold)
    note = ""
    if depth is None and max_nodes and len(view.items) > max_nodes:
        total = len(model.graph) - len(model.inputs)
        for d in (1, 0):
            view = build_view(model, d, collapse_repeated, fold)
            if len(view.items) <= max_nodes:
                break
        note = (
            f"{total} layers: blocks collapsed to depth {d} for legibility; to expand, pass "
            "depth=N (command line: --depth N) for that depth, or max_nodes=None "
            "(command line: --max-nodes 0) for every layer"
        )
        warnings.warn(f'draw "{model.name}": {note}', stacklevel=3)
    return view, note


def to_dot(
    model,
    show_shapes: bool = True,
    show_params: bool = True,
    rankdir: str = "TB",
    depth: int | None = None,
    collapse_repeated: bool = False,
    fold: bool = False,
    dpi: int | None = None,
    max_nodes: int | None = MAX_NODES,
) -> str:
    """The diagram as Graphviz DOT source (options as :func:`draw`)."""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f'draw: rankdir must be "TB" or "LR" (or "BT", "RL"), got {rankdir!r}')
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"draw: depth must be an int >= 0 or None, got {depth!r}")
    view, note = _choose_view(model, depth, collapse_repeated, fold, max_nodes)
    ids = {it.key: f"n{k}" for k, it in enumerate(view.items)}
    q = _quote
    out = [f"digraph {q(model.name)} {{"]
    graph_attrs = [
        f"rankdir={rankdir}",
        'fontname="Helvetica"',
        "fontsize=12",
        "labelloc=t",
        "nodesep=0.25",
        "ranksep=0.35",
        "newrank=true",
    ]
    title = f"{model.name}" + (f"\\n{note}" if note else "")
    graph_attrs.append(f"label={q(title)}")
    if dpi:
        graph_attrs.append(f"dpi={int(dpi)}")
    out.append(f"  graph [{', '.join(graph_attrs)}];")
    out.append(
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, '
        'margin="0.12,0.04"];'
    )
    out.append('  edge [color="#555555", arrowsize=0.7];')

    # clusters: a tree of block paths that hold visible items
    children: dict[tuple, list] = {}
    for it in view.items:
        path = it.block
        children.setdefault(path, []).append(it)
        for k in range(len(path) - 1, -1, -1):
            sub = path[:k]
            kids = children.setdefault(sub, [])
            if path[: k + 1] not in kids:
                kids.append(path[: k + 1])

    def emit(path: tuple, indent: str) -> None:
        prefix = "/".join(path)
        for entry in children.get(path, []):
            if isinstance(entry, tuple):
                label = entry[-1]
                out.append(f"{indent}subgraph {q('cluster_' + '/'.join(entry))} {{")
                out.append(
                    f'{indent}  label={q(label)}; style="rounded,dashed"; color="#7a8a99";'
                    " fontsize=11; labeljust=l;"
                )
                emit(entry, indent + "  ")
                out.append(f"{indent}}}")
            else:
                color = COLORS.get(entry.family, COLORS["other"])
                extra = ", peripheries=2" if entry.kind == "repeat" else ""
                out.append(
                    f"{indent}{ids[entry.key]} [label="
                    f"{_label(entry, prefix, show_shapes, show_params)}, "
                    f'fillcolor="{color}"{extra}];'
                )

    emit((), "  ")
    for a, b, _ in view.edges:
        out.append(f"  {ids[a]} -> {ids[b]};")
    out.append("}")
    return "\n".join(out) + "\n"


def _quote(s: str) -> str:
    # names cannot hold quotes or backslashes (see naming.py); "\\n" in titles is a DOT newline
    return '"' + str(s).replace('"', '\\"') + '"'


def _dot_binary() -> str | None:
    return shutil.which("dot")


def _run_dot(source: str, fmt: str) -> bytes:
    """``dot -T<fmt>`` on ``source`` through the ``graphviz`` package (which finds the binary,
    runs it and reports its errors)."""
    import graphviz

    if _dot_binary() is None:
        raise GraphvizNotFoundError(INSTALL)
    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound as e:
        raise GraphvizNotFoundError(INSTALL) from e
    except graphviz.CalledProcessError as e:
        err = (e.stderr or b"").decode(errors="replace")[:2000]
        raise RuntimeError(f"draw: dot failed ({e.returncode}): {err}") from e


def draw(model, path: str | os.PathLike | None = None, **options) -> str:
    """Write the diagram of ``model`` to ``path``; the format comes from the suffix.

    Parameters
    ----------
    path : str, optional
        ``.svg``, ``.png``, ``.pdf`` (rendered by ``dot``) or ``.gv``/``.dot`` (the source
        only).  Default ``<model name>.svg``.
    show_shapes, show_params : bool
        Show output shapes (``C×H×W``; blocks: in → out) and parameter counts.
    rankdir : "TB" or "LR"
        Top to bottom or left to right.
    depth : int, optional
        Collapse blocks nested deeper than ``depth`` into one node each.
    collapse_repeated : bool
        Draw a run of identical consecutive blocks as one node (``bottleneck ×3``).
    fold : bool
        Fold BatchNormalization/activation layers into the Conv2D/Dense before them.
    dpi : int, optional
        Resolution for ``.png``.
    max_nodes : int or None
        Above this many visible nodes (default 250) and without ``depth``, collapse to depth 1
        (then 0) and say so in the diagram; ``None`` never collapses (on the command line,
        ``--max-nodes 0``).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    GraphvizNotFoundError
        When ``dot`` is missing: the ``.gv`` source is written next to ``path`` first.
    """
    path = Path(path if path is not None else f"{model.name}.svg")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"draw: unknown format {suffix!r}; use one of {', '.join(FORMATS)}")
    source = to_dot(model, **options)
    fmt = FORMATS[suffix]
    if fmt is None:
        path.write_text(source, encoding="utf-8")
        return str(path)
    if _dot_binary() is None:
        gv = path.with_suffix(".gv")
        gv.write_text(source, encoding="utf-8")
        raise GraphvizNotFoundError(f"{INSTALL}\nThe DOT source was written to {gv}.")
    path.write_bytes(_run_dot(source, fmt))
    return str(path)


def repr_svg(model) -> str | None:
    """The SVG for Jupyter (``None`` without ``dot``, so Jupyter falls back to the text repr)."""
    if _dot_binary() is None:
        return None
    return _run_dot(to_dot(model), "svg").decode("utf-8")
