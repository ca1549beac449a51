"""Modules bound on first use, for the hot paths that cannot import them at module level."""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for module ``name`` in ``namespace[alias]``; the first attribute access imports
    it and puts the module itself there, so later accesses are plain global lookups.

    ``tinycnn.tensor`` and ``tinycnn.autograd`` need the op modules, which import them: a
    function-level ``from .ops.arith import Add`` would cost more than the op's own Python.
    """

    def __init__(self, name: str, namespace: dict, alias: str):
        self._name, self._namespace, self._alias = name, namespace, alias

    def __getattr__(self, attr: str):
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module
        return getattr(module, attr)
