"""Differentiable ops: forward, backward and argument validation, written once for all devices.

Each module holds one op family as :class:`tinycnn.autograd.Function` subclasses.  A forward or
backward gets its arrays' back end with ``get_backend(self.device)`` and its kernels with
``get_kernels(self.device, "<family>")``, which resolve to ``tinycnn/ops/cpu/<family>.py`` or
``tinycnn/ops/cuda/<family>.py`` (same function names on both).
"""
