"""The common face of a loaded network, whatever runs it, with micro-batching.

A :class:`Model` takes one array ``(N, ...)`` float32 and returns its outputs by
name, ``(N, ...)`` each. Backends implement ``_run`` for a batch no larger than
``max_batch``; ``__call__`` splits larger inputs into micro-batches (or runs one
item at a time when the network has a fixed batch of 1) and concatenates.
``label`` says what actually ran (e.g. ``onnxruntime:CPUExecutionProvider``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """A network's interface.

    Attributes:
        input_name: name of the single input.
        input_shape: input shape with the batch first (``-1`` when it is free).
        output_names: output names, in order.
        batchable: the network accepts a batch larger than 1.
    """

    input_name: str
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    batchable: bool


class Model:
    """Base class of loaded networks (see module doc)."""

    label: str = "model"
    """Backend and device/provider that actually runs, e.g. ``onnxruntime:CPUExecutionProvider``."""
    reason: str = ""
    """Why this backend was chosen."""

    def __init__(self, info: ModelInfo, max_batch: int) -> None:
        self.info = info
        self.max_batch = max(1, int(max_batch)) if info.batchable else 1

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run one batch ``(n <= max_batch, ...)``; outputs in ``info.output_names`` order."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """x ``(N, *input_shape[1:])`` float32 -> outputs ``{name: (N, ...)}``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        expect = self.info.input_shape[1:]
        if x.ndim != len(self.info.input_shape) or any(e > 0 and e != s for e, s in zip(expect, x.shape[1:])):
            raise ValueError(f"input of shape {x.shape} does not fit {self.info.input_shape}")
        n = x.shape[0]
        if n <= self.max_batch:
            outs = self._run(x)
        else:
            parts = [self._run(x[i:i + self.max_batch]) for i in range(0, n, self.max_batch)]
            outs = [np.concatenate([p[k] for p in parts]) for k in range(len(self.info.output_names))]
        return dict(zip(self.info.output_names, outs))

    def describe(self) -> str:
        """One line: what runs and why."""
        batch = f"micro-batches of up to {self.max_batch}" if self.info.batchable else "batch 1"
        return f"{self.label} ({batch}; {self.reason})" if self.reason else f"{self.label} ({batch})"

    def close(self) -> None:
        """Release the backend's resources."""
