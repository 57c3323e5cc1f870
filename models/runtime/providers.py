"""Which backend runs a model: what the machine offers, and the choice made from it.

:func:`probe` looks at the machine (ONNX Runtime's execution providers, NVIDIA
GPUs, whether ``tensorrt`` and CUDA torch import); :func:`choose` turns that
:class:`Environment` and a preference into a :class:`Choice`. ``choose`` is a
pure function of its arguments, so the GPU cases are tested on any machine by
passing the environment a GPU machine would have.

Preferences (``RuntimeConfig.provider``):

==============  ==============================================================
``auto``        the best available, in this order: ONNX Runtime's TensorRT EP
                (GPU + ``onnxruntime-gpu`` built with TensorRT), the native
                TensorRT engine (``tensorrt`` + CUDA torch + GPU), ONNX Runtime's
                CUDA EP (GPU + ``onnxruntime-gpu``), ONNX Runtime's CPU EP
``tensorrt``    ONNX Runtime's TensorRT EP, else the native engine (error if neither)
``trt-native``  the native TensorRT engine only
``cuda``        ONNX Runtime's CUDA EP
``cpu``         ONNX Runtime's CPU EP
``torch``       the torch eager reference (CUDA when available, else CPU)
==============  ==============================================================
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inscene.engine.errors import InputError

TRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
PREFERENCES = ("auto", "tensorrt", "trt-native", "cuda", "cpu", "torch")


@dataclass(frozen=True)
class Environment:
    """What the machine offers to run a model.

    Attributes:
        ort_providers: ``onnxruntime.get_available_providers()`` (built-in EPs, not
            a promise that a device exists).
        gpus: NVIDIA GPUs visible to this process.
        tensorrt: the ``tensorrt`` package imports.
        torch_cuda: torch was built with CUDA and sees a device.
    """

    ort_providers: tuple[str, ...] = (CPU_EP,)
    gpus: int = 0
    tensorrt: bool = False
    torch_cuda: bool = False

    @property
    def ort_trt(self) -> bool:
        return TRT_EP in self.ort_providers and self.gpus > 0

    @property
    def ort_cuda(self) -> bool:
        return CUDA_EP in self.ort_providers and self.gpus > 0

    @property
    def native_trt(self) -> bool:
        return self.tensorrt and self.torch_cuda and self.gpus > 0


@dataclass(frozen=True)
class Choice:
    """The backend chosen for a model.

    Attributes:
        backend: ``onnxruntime``, ``tensorrt`` (native engine) or ``torch``.
        providers: ONNX Runtime providers with their options, in priority order
            (empty for the other backends).
        device: ``cuda`` or ``cpu``.
        reason: one line saying why.
    """

    backend: str
    providers: tuple[tuple[str, dict[str, Any]], ...] = ()
    device: str = "cpu"
    reason: str = ""

    @property
    def label(self) -> str:
        """What the choice will run on, e.g. ``onnxruntime:TensorrtExecutionProvider``."""
        if self.backend == "onnxruntime":
            return f"onnxruntime:{self.providers[0][0]}"
        return f"{self.backend}:{self.device}"


def _gpu_count() -> int:
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        return sum(1 for _ in gpus.iterdir())
    return 0


def probe() -> Environment:
    """The :class:`Environment` of this process."""
    try:
        import onnxruntime as ort

        providers = tuple(ort.get_available_providers())
    except ImportError:  # pragma: no cover - a dependency
        providers = ()
    torch_cuda = False
    try:
        import torch

        torch_cuda = bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - a dependency
        pass
    gpus = _gpu_count()
    if torch_cuda and not gpus:
        import torch

        gpus = torch.cuda.device_count()
    trt = importlib.util.find_spec("tensorrt") is not None
    return Environment(providers, gpus, trt, torch_cuda)


def trt_options(cache_dir: Path, fp16: bool, input_name: str, shape: tuple[int, ...], max_batch: int
                ) -> dict[str, Any]:
    """ONNX Runtime TensorRT EP options: engine and timing caches on disk, a batch profile."""
    dims = "x".join(str(d) for d in shape[1:])
    return {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
        "trt_fp16_enable": fp16,
        "trt_profile_min_shapes": f"{input_name}:1x{dims}",
        "trt_profile_opt_shapes": f"{input_name}:{max_batch}x{dims}",
        "trt_profile_max_shapes": f"{input_name}:{max_batch}x{dims}",
    }


@dataclass(frozen=True)
class ModelIO:
    """What :func:`choose` needs to know of the model (for TensorRT's batch profile)."""

    input_name: str = "input"
    input_shape: tuple[int, ...] = (1, 1)
    max_batch: int = 1
    cache_dir: Path = field(default_factory=lambda: Path("."))
    fp16: bool = False


def choose(env: Environment, prefer: str = "auto", io: ModelIO | None = None, has_torch: bool = True) -> Choice:
    """Pick the backend for ``prefer`` on ``env`` (see the module doc).

    ``has_torch``: a torch reference module exists for the model. Raises
    :class:`InputError` naming the preference when it cannot be met here.
    """
    io = io or ModelIO()
    if prefer not in PREFERENCES:
        raise InputError(f"provider '{prefer}'", "unknown provider", f"use one of: {', '.join(PREFERENCES)}")
    trt = ((TRT_EP, trt_options(io.cache_dir, io.fp16, io.input_name, io.input_shape, io.max_batch)),
           (CUDA_EP, {}), (CPU_EP, {}))
    cuda = ((CUDA_EP, {}), (CPU_EP, {}))
    cpu = ((CPU_EP, {}),)
    native = Choice("tensorrt", (), "cuda", "native TensorRT engine (tensorrt package, CUDA torch, GPU)")
    if prefer == "auto":
        if env.ort_trt:
            return Choice("onnxruntime", trt, "cuda", "GPU and ONNX Runtime's TensorRT EP are available")
        if env.native_trt:
            return native
        if env.ort_cuda:
            return Choice("onnxruntime", cuda, "cuda", "GPU and ONNX Runtime's CUDA EP are available")
        why = "no NVIDIA GPU" if env.gpus == 0 else "no GPU execution provider in this onnxruntime build"
        return Choice("onnxruntime", cpu, "cpu", f"{why}: ONNX Runtime CPU EP")
    if prefer == "tensorrt":
        if env.ort_trt:
            return Choice("onnxruntime", trt, "cuda", "requested TensorRT: ONNX Runtime's TensorRT EP")
        if env.native_trt:
            return native
        raise InputError("provider 'tensorrt'", _missing_gpu(env, "TensorRT"),
                         "install the 'gpu' extra (onnxruntime-gpu) on an NVIDIA machine, or use provider 'auto'")
    if prefer == "trt-native":
        if env.native_trt:
            return native
        raise InputError("provider 'trt-native'", _missing_gpu(env, "the tensorrt package with CUDA torch"),
                         "use provider 'tensorrt' or 'auto'")
    if prefer == "cuda":
        if env.ort_cuda:
            return Choice("onnxruntime", cuda, "cuda", "requested CUDA: ONNX Runtime's CUDA EP")
        raise InputError("provider 'cuda'", _missing_gpu(env, "ONNX Runtime's CUDA EP"),
                         "install the 'gpu' extra (onnxruntime-gpu) on an NVIDIA machine, or use provider 'auto'")
    if prefer == "torch":
        if not has_torch:
            raise InputError("provider 'torch'", "this model has no torch reference", "use provider 'auto'")
        dev = "cuda" if env.torch_cuda else "cpu"
        return Choice("torch", (), dev, f"requested the torch reference on {dev}")
    return Choice("onnxruntime", cpu, "cpu", "requested ONNX Runtime CPU EP")


def _missing_gpu(env: Environment, what: str) -> str:
    if env.gpus == 0:
        return f"needs an NVIDIA GPU for {what}; none is visible"
    return f"{what} is not available in this environment"
