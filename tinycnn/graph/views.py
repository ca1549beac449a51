"""What summaries and diagrams show: the model's nodes, with blocks collapsed below a depth,
runs of identical blocks merged (``bottleneck ×3``) and BN/activations folded into their conv.

An :class:`Item` is one visible row/box; every graph node belongs to exactly one item.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .shapes import Shape

FOLDABLE = {"BatchNormalization", "Activation", "ReLU", "LeakyReLU", "Softmax"}
FOLD_TARGETS = {"conv", "dense"}


@dataclass
class Item:
    key: str
    kind: str  # "node" | "block" | "repeat"
    name: str
    type: str
    block: tuple[str, ...]  # the cluster this item is drawn in
    nodes: list[int]
    params: int = 0
    macs: int = 0
    in_shapes: list[Shape] = field(default_factory=list)
    out_shapes: list[Shape] = field(default_factory=list)
    describe: str = ""
    family: str = "other"
    folded: list[str] = field(default_factory=list)
    count: int = 1
    members: list[str] = field(default_factory=list)  # the blocks a "repeat" item stands for


@dataclass
class View:
    items: list[Item]
    of_node: dict[int, str]  # graph node id -> item key
    edges: list[tuple[str, str, Shape]]  # between items, in first-seen order

    def by_key(self) -> dict[str, Item]:
        return {it.key: it for it in self.items}


def _block_nodes(g, order) -> dict[tuple[str, ...], list[int]]:
    """Every block path (at every level) -> its nodes, in order."""
    out: dict[tuple[str, ...], list[int]] = {}
    for i in order:
        b = g.nodes[i]["block"]
        for level in range(1, len(b) + 1):
            out.setdefault(b[:level], []).append(i)
    return out


def _signature(g, nodes: list[int], path: tuple[str, ...]):
    """What must agree for two blocks to count as repeats: types, hyper-parameters, shapes
    and the wiring inside the block."""
    pos = {n: k for k, n in enumerate(nodes)}
    sig = []
    for n in nodes:
        d = g.nodes[n]
        preds = tuple(sorted(pos.get(p, -1) for p in g.predecessors(n)))
        sig.append(
            (
                d["type"],
                d["layer"].describe(),
                tuple(d["output_shapes"]),
                d["block"][len(path) :],
                preds,
            )
        )
    return tuple(sig)


def _common_stem(names: list[str]) -> str:
    """``block35_1 … block35_10`` -> ``block35``; ``unit1 … unit4`` -> ``unit``."""
    stem = os.path.commonprefix(names)
    # digits shared only by accident ("block1" of block10, block11) belong to the counter
    while (
        stem
        and stem[-1].isdigit()
        and any(len(n) > len(stem) and n[len(stem)].isdigit() for n in names)
    ):
        stem = stem[:-1]
    stem = re.sub(r"[_\-.]+$", "", stem)
    return stem or names[0]


def _repeat_runs(g, order, blocks, depth) -> list[list[tuple[str, ...]]]:
    """Runs (length >= 2) of consecutive sibling blocks with the same signature, each block's
    inputs coming only from the block before it; outermost runs first."""
    runs = []
    covered: set[tuple[str, ...]] = set()
    by_parent: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path in sorted(blocks, key=lambda p: (len(p), blocks[p][0])):
        if depth is not None and len(path) > depth + 1:
            continue  # inside a block that depth collapses anyway
        by_parent.setdefault(path[:-1], []).append(path)
    for parent in sorted(by_parent, key=len):
        if any(parent[:k] in covered for k in range(1, len(parent) + 1)):
            continue
        siblings = sorted(by_parent[parent], key=lambda p: blocks[p][0])
        run = [siblings[0]]
        for path in siblings[1:] + [None]:
            ok = False
            if path is not None:
                prev, members = set(blocks[run[-1]]), set(blocks[path])
                external = {p for n in blocks[path] for p in g.predecessors(n) if p not in members}
                ok = (
                    external
                    and external <= prev
                    and _signature(g, blocks[path], path) == _signature(g, blocks[run[-1]], run[-1])
                )
            if ok:
                run.append(path)
                continue
            if len(run) >= 2:
                runs.append(run)
                covered.update(run)
            if path is not None:
                run = [path]
    return runs


def build_view(
    model, depth: int | None = None, collapse_repeated: bool = False, fold: bool = False
) -> View:
    """The visible items of ``model``'s graph (see module doc)."""
    g = model.graph
    order = list(g.nodes)
    blocks = _block_nodes(g, order)
    owner: dict[int, tuple[str, tuple]] = {}  # node -> (kind, path or run)
    if collapse_repeated:
        for run in _repeat_runs(g, order, blocks, depth):
            for path in run:
                for n in blocks[path]:
                    owner[n] = ("repeat", tuple(run))
    if depth is not None:
        for i in order:
            b = g.nodes[i]["block"]
            if i not in owner and len(b) > depth:
                owner[i] = ("block", b[: depth + 1])

    items: dict[str, Item] = {}
    of_node: dict[int, str] = {}
    for i in order:
        d = g.nodes[i]
        kind, what = owner.get(i, ("node", None))
        if kind == "node":
            key = f"n{i}"
            items[key] = Item(
                key,
                "node",
                d["name"],
                d["type"],
                d["block"],
                [i],
                d["params"],
                d["macs"],
                list(d["input_shapes"]),
                list(d["output_shapes"]),
                d["layer"].describe(),
                d["family"],
            )
        else:
            if kind == "block":
                key, name, block = "b:" + "/".join(what), "/".join(what), what[:-1]
            else:
                first = what[0]
                key, block = "r:" + "/".join(first), first[:-1]
                name = f"{_common_stem([p[-1] for p in what])} ×{len(what)}"
            if key not in items:
                items[key] = Item(key, kind, name, "Block", block, [], family="block")
                if kind == "repeat":
                    items[key].count = len(what)
                    items[key].members = ["/".join(p) for p in what]
            it = items[key]
            it.nodes.append(i)
            it.params += d["params"]
            it.macs += d["macs"]
        of_node[i] = key

    edges: dict[tuple[str, str], Shape] = {}
    outputs = {(t.node.seq, t.index) for t in model.outputs}
    for u, v, e in g.edges(data=True):
        a, b = of_node[u], of_node[v]
        if a != b:
            edges.setdefault((a, b), e["shape"])
    for it in items.values():
        if it.kind == "node":
            continue
        members = set(it.nodes)
        ins, outs = [], []
        for n in it.nodes:
            for p in g.predecessors(n):
                s = g.edges[p, n]["shape"]
                if p not in members and s not in ins:
                    ins.append(s)
            node = g.nodes[n]["node"]
            leaves = any(s not in members for s in g.successors(n)) or any(
                (node.seq, t.index) in outputs for t in node.flat_outputs
            )
            if leaves:
                for s in g.nodes[n]["output_shapes"]:
                    if s not in outs:
                        outs.append(s)
        it.in_shapes, it.out_shapes = ins, outs
        n_layers = len(it.nodes)
        layers = f"{n_layers} layer{'s' if n_layers > 1 else ''}"
        it.describe = layers if it.kind == "block" else f"{len(it.members)} blocks, {layers}"
    view = View(list(items.values()), of_node, [(a, b, s) for (a, b), s in edges.items()])
    return _fold(view) if fold else view


def _fold(view: View) -> View:
    """Merge BN/activation nodes into the conv/dense node right before them."""
    items = view.by_key()
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for a, b, _ in view.edges:
        preds.setdefault(b, []).append(a)
        succs.setdefault(a, []).append(b)
    alias: dict[str, str] = {}
    for it in view.items:
        if it.kind != "node" or it.type not in FOLDABLE or len(preds.get(it.key, [])) != 1:
            continue
        head_key = preds[it.key][0]
        head = items[alias.get(head_key, head_key)]
        if (
            head.kind != "node"
            or head.family not in FOLD_TARGETS
            or len(succs.get(head_key, [])) != 1
            or head.block != it.block
        ):
            continue
        label = it.type if it.type != "Activation" else it.describe
        head.folded.append("BN" if it.type == "BatchNormalization" else label)
        head.nodes += it.nodes
        head.params += it.params
        head.out_shapes = it.out_shapes
        alias[it.key] = head.key
    if not alias:
        return view

    def res(k: str) -> str:
        return alias.get(k, k)

    edges: dict[tuple[str, str], Shape] = {}
    for a, b, s in view.edges:
        if res(a) != res(b):
            edges.setdefault((res(a), res(b)), s)
    of_node = {n: res(k) for n, k in view.of_node.items()}
    kept = [it for it in view.items if it.key not in alias]
    return View(kept, of_node, [(a, b, s) for (a, b), s in edges.items()])
