"""``inscene bench accuracy``: stage-1 accuracy on the synthetic suite with oracle perception.

:mod:`.metrics` holds the pure metric functions, :mod:`.runner` runs and scores one
scene (``evaluate(preset, seed, method)``), :mod:`.cli` is the benchmark.
"""

from .cli import add_arguments, main

__all__ = ["add_arguments", "main"]
