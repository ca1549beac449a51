"""Every ``cuda.syncthreads()`` is reached by all threads of a block (read from the source).

A barrier under a branch or loop whose condition differs between the threads of a block (one
that depends on ``threadIdx`` or ``cuda.grid``), or after a ``return``/``break``/``continue``
that only some threads take, hangs or gives undefined results on a GPU, while the simulator
does not notice.  Neither it nor ``compile_ptx`` sees races, so this checks the structure.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import tinycnn.ops.cuda as pkg

SOURCES = sorted(pathlib.Path(pkg.__path__[0]).glob("*.py"))
THREAD_VALUES = ("threadIdx", "laneid", "grid")  # cuda.<name>: differs within a block


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _bound(target) -> set[str]:
    """Names an assignment binds (``a[i] = v`` binds none: it stores into ``a``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*map(_bound, target.elts))
    return set()


def _per_thread(node, tainted: set[str]) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr in THREAD_VALUES:
            return True
    return bool(_names(node) & tainted)


def _barrier_functions(tree) -> set[str]:
    """Functions that call ``cuda.syncthreads`` themselves or through another such function."""
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    found = {"syncthreads"}
    while True:
        more = {
            name
            for name, f in funcs.items()
            if name not in found and any(_callee(c) in found for c in ast.walk(f))
        }
        if not more:
            return found - {"syncthreads"}
        found |= more


def _callee(node) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)


def _tainted(fn: ast.FunctionDef, device: bool) -> set[str]:
    """Names that may hold a different value in each thread (a device function's arguments
    may: ``tid``, a thread's partial sum)."""
    tainted = {a.arg for a in fn.args.args} if device else set()
    while True:
        before = len(tainted)
        for n in ast.walk(fn):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None:
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                if _per_thread(n.value, tainted):
                    for t in targets:
                        tainted |= _bound(t)
            elif isinstance(n, ast.For) and _per_thread(n.iter, tainted):
                tainted |= _bound(n.target)
        if len(tainted) == before:
            return tainted


def _visit(fn, node, barriers, tainted, guards, loops, found) -> None:
    """Walk ``node`` with ``guards``, the enclosing per-thread branches, and ``loops``, the
    number of guards outside each enclosing loop that holds a barrier."""
    where = f"{fn.name}:{getattr(node, 'lineno', 0)}"
    if _callee(node) in barriers and guards:
        found.append(f"{where}: barrier under a per-thread condition")
    if isinstance(node, ast.Return) and guards:
        found.append(f"{where}: return under a per-thread condition")
    if isinstance(node, (ast.Break, ast.Continue)) and loops and loops[-1] < len(guards):
        found.append(f"{where}: per-thread exit of a loop with a barrier")
    for child in ast.iter_child_nodes(node):
        g, lp = guards, loops
        if isinstance(node, (ast.If, ast.While, ast.IfExp)) and child is not node.test:
            g = guards + [node] if _per_thread(node.test, tainted) else guards
        if isinstance(node, (ast.For, ast.While)) and child in node.body:
            if isinstance(node, ast.For) and _per_thread(node.iter, tainted):
                g = g + [node]
            if any(_callee(c) in barriers for c in ast.walk(node)):
                lp = loops + [len(guards)]
        _visit(fn, child, barriers, tainted, g, lp, found)


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    barriers = _barrier_functions(tree) | {"syncthreads"}
    found: list[str] = []
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name in barriers:
            device = any("device" in ast.unparse(d) for d in fn.decorator_list)
            _visit(fn, fn, barriers, _tainted(fn, device), [], [], found)
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_every_barrier_is_reached_by_the_whole_block(path):
    assert violations(path.read_text()) == []


def test_the_check_finds_divergent_barriers():
    bad = """
def k(x, n):
    tid = cuda.threadIdx.x
    if tid < n:
        cuda.syncthreads()
    for i in range(tid, n, 32):
        cuda.syncthreads()
    while n > 0:
        if tid == 0:
            break
        cuda.syncthreads()
    if x[tid] > 0:
        return
    cuda.syncthreads()
"""
    assert [v.split(": ", 1)[1] for v in violations(bad)] == [
        "barrier under a per-thread condition",
        "barrier under a per-thread condition",
        "per-thread exit of a loop with a barrier",
        "return under a per-thread condition",
    ]
    uniform = """
def k(x, n):
    tid = cuda.threadIdx.x
    for c in range(cuda.blockIdx.x, n, cuda.gridDim.x):
        if tid < n:
            x[tid] = 0
        cuda.syncthreads()
"""
    assert violations(uniform) == []
