"""The graph DSL: ``Input``, layers called on symbolic tensors, ``Model``, ``Sequential``,
``block``; summaries, the dimension walk-through (``explain``) and Graphviz diagrams."""

from .layer import Layer
from .model import Model
from .naming import block, clear_session, current_block
from .sequential import Sequential
from .symbolic import Input, InputLayer, Node, SymbolicTensor

__all__ = [
    "Input",
    "InputLayer",
    "Layer",
    "Model",
    "Node",
    "Sequential",
    "SymbolicTensor",
    "block",
    "clear_session",
    "current_block",
]
