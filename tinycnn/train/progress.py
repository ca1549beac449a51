"""Progress output of ``fit``/``evaluate``: a tqdm bar per epoch on a terminal, one line per
epoch otherwise (logs, CI), nothing at ``verbose=0``.

Timing: the first step of a run compiles the Numba kernels (seconds) unless the on-disk cache
has them; it is reported once, on its own line ("compiling kernels… 4.2 s"), and left out of
ms/step and samples/s so that those describe the steady state.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["Progress", "format_logs", "resolve_verbose"]


def resolve_verbose(verbose, stream=None) -> int:
    """``"auto"`` -> 1 (bar) on a terminal, 2 (one line per epoch) otherwise."""
    if verbose == "auto":
        stream = stream or sys.stdout
        return 1 if getattr(stream, "isatty", lambda: False)() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _fmt(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


def format_logs(logs: dict[str, Any]) -> str:
    return " - ".join(f"{k}: {_fmt(v)}" for k, v in logs.items() if isinstance(v, (int, float)))


class Progress:
    """Per-epoch progress; ``step(i, seconds, running_logs)`` after each batch."""

    def __init__(self, verbose: int, epochs: int, steps: int, batch_size: int, stream=None):
        self.verbose = verbose
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.stream = stream or sys.stdout
        self.bar = None

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def epoch_begin(self, epoch: int) -> None:
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.steps,
                desc=f"Epoch {epoch + 1}/{self.epochs}",
                unit="step",
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.2,
                leave=True,
            )

    def compiled(self, seconds: float) -> None:
        if self.verbose:
            self._print(f"compiling kernels… {seconds:.1f} s (first step, not counted in ms/step)")

    def step(
        self,
        logs: dict[str, float],
        timed_steps: int = 0,
        timed_samples: int = 0,
        timed_seconds: float = 0.0,
    ) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n == self.bar.total or self.bar.n % 10 == 1:
                text = format_logs(logs)
                if timed_steps and timed_seconds > 0:
                    text = (
                        f"{1000 * timed_seconds / timed_steps:.1f} ms/step - "
                        f"{timed_samples / timed_seconds:,.0f} samples/s - {text}"
                    )
                self.bar.set_postfix_str(text, refresh=False)

    def epoch_end(
        self,
        epoch: int,
        logs: dict[str, float],
        seconds: float,
        timed_steps: int,
        timed_samples: int,
        timed_seconds: float,
    ) -> None:
        if not self.verbose:
            return
        ms = 1000.0 * timed_seconds / max(timed_steps, 1)
        rate = timed_samples / timed_seconds if timed_seconds > 0 else float("inf")
        speed = f"{ms:.1f} ms/step - {rate:,.0f} samples/s"
        if self.bar is not None:
            self.bar.set_postfix_str(f"{speed} - {format_logs(logs)}", refresh=True)
            self.bar.close()
            self.bar = None
        else:
            self._print(
                f"Epoch {epoch + 1}/{self.epochs} - {self.steps} steps - {seconds:.2f} s - "
                f"{speed} - {format_logs(logs)}"
            )

    def message(self, text: str) -> None:
        if self.verbose:
            self._print(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
