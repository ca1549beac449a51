"""Benchmarks: tinycnn vs PyTorch CPU, measured in the same run (``python -m benchmarks.ops``)."""
