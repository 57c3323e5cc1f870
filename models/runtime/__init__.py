"""The model runtime: run an ONNX network on the best backend here, and say which ran.

>>> model = load_model(onnx_file, RuntimeConfig(provider="auto"), torch_factory=make_module)
>>> model.label           # e.g. 'onnxruntime:CPUExecutionProvider'
>>> outputs = model(x)    # {name: (N, ...)}; micro-batched by the runtime

Backends: ONNX Runtime with the TensorRT EP (engine cache on disk), the CUDA EP
or the CPU EP; a native TensorRT engine where ``tensorrt`` and a GPU exist; the
torch eager reference. :func:`~.providers.choose` picks (a pure function, tested
for the GPU cases anywhere); :func:`load_model` builds the model and its
``label`` reports what actually runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inscene.engine.cache import cache_dir, cache_root
from .model import Model, ModelInfo
from .onnx_session import OrtModel, onnx_info
from .providers import PREFERENCES, Choice, Environment, ModelIO, choose, probe

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "PREFERENCES", "Choice", "Environment", "Model", "ModelIO", "ModelInfo", "OrtModel", "RuntimeConfig",
    "cache_dir", "cache_root", "choose", "default_threads", "load_model", "onnx_info", "probe",
]


def default_threads() -> int:
    """CPU threads per session: ``$INSCENE_THREADS`` if set, else min(4, cores)."""
    env = os.environ.get("INSCENE_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class RuntimeConfig:
    """How to run a network."""

    provider: str = "auto"
    """``auto``, ``tensorrt``, ``trt-native``, ``cuda``, ``cpu`` or ``torch`` (see :mod:`.providers`)."""
    threads: int = 0
    """CPU threads per session (0: :func:`default_threads`)."""
    max_batch: int = 8
    """Largest micro-batch sent to a batchable network (also TensorRT's profile maximum)."""
    fp16: bool = False
    """Let TensorRT use float16 kernels."""


def load_model(onnx_file: str | Path, config: RuntimeConfig | None = None,
               torch_factory: Callable[[], nn.Module] | None = None, env: Environment | None = None) -> Model:
    """Load ``onnx_file`` on the backend :func:`choose` picks for ``config.provider``.

    ``torch_factory`` builds the torch reference (needed for provider ``torch``);
    ``env`` defaults to :func:`probe`. The result's ``label`` says what runs.
    """
    config = config or RuntimeConfig()
    path = Path(onnx_file)
    info = onnx_info(path)
    env = env or probe()
    threads = config.threads or default_threads()
    trt_cache = cache_dir("tensorrt")
    io = ModelIO(info.input_name, info.input_shape, config.max_batch, trt_cache, config.fp16)
    choice = choose(env, config.provider, io, has_torch=torch_factory is not None)
    if choice.backend == "torch":
        import torch

        from .torch_model import TorchModel

        torch.set_num_threads(threads)
        assert torch_factory is not None
        return TorchModel(torch_factory(), info, choice.device, config.max_batch, choice.reason)
    if choice.backend == "tensorrt":
        from .tensorrt_engine import TensorRTModel

        return TensorRTModel(path, info, trt_cache, config.fp16, config.max_batch, choice.reason)
    return OrtModel(path, choice, threads, config.max_batch, info)
