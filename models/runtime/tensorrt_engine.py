"""Native TensorRT: build an engine from an ONNX file once, cache it on disk, run it.

Only where the ``tensorrt`` package imports, torch sees a CUDA device, and a GPU
exists (see :mod:`.providers`); elsewhere this module is never imported. The
engine is built with one optimization profile (batch 1 .. ``max_batch``) and
cached under ``<cache>/tensorrt/`` keyed by the ONNX digest, the TensorRT
version, the GPU name, the precision and the batch limit, so a second start
deserializes in milliseconds. Buffers are torch CUDA tensors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from inscene.engine.errors import InputError

from inscene.engine.cache import build_once
from .model import Model, ModelInfo


def engine_path(onnx_file: Path, cache_dir: Path, fp16: bool, max_batch: int, trt_version: str, gpu: str) -> Path:
    """The cache file of the engine built from ``onnx_file`` under these settings."""
    h = hashlib.sha256(Path(onnx_file).read_bytes())
    h.update(f"|trt {trt_version}|gpu {gpu}|fp16 {fp16}|batch {max_batch}".encode())
    return cache_dir / f"{Path(onnx_file).stem}.{h.hexdigest()[:16]}.engine"


def _build(trt, onnx_file: Path, info: ModelInfo, fp16: bool, max_batch: int, dest: Path) -> None:  # noqa: ANN001
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT < 10 needs it
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_file).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError(str(onnx_file), f"TensorRT cannot parse it: {errors}", "use provider 'auto'")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    rest = tuple(info.input_shape[1:])
    profile.set_shape(info.input_name, (1, *rest), (max_batch, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise InputError(str(onnx_file), "TensorRT failed to build an engine", "use provider 'auto'")
    dest.write_bytes(bytes(blob))


class TensorRTModel(Model):
    """An ONNX file run as a native TensorRT engine (cached; see module doc)."""

    def __init__(self, onnx_file: Path, info: ModelInfo, cache_dir: Path, fp16: bool = False, max_batch: int = 8,
                 reason: str = "") -> None:
        import tensorrt as trt
        import torch

        super().__init__(info, max_batch)
        self._torch = torch
        gpu = torch.cuda.get_device_name(0)
        path = engine_path(onnx_file, cache_dir, fp16, self.max_batch, trt.__version__, gpu)
        build_once(path, lambda tmp: _build(trt, onnx_file, info, fp16, self.max_batch, tmp))
        self.engine_file = path
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise InputError(str(path), "cached TensorRT engine cannot be loaded", "delete it to rebuild")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self.label = "tensorrt:cuda"
        self.reason = reason or f"engine {path.name} on {gpu}"

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        ctx = self._context
        with torch.cuda.stream(self._stream):
            xin = torch.from_numpy(x).cuda(non_blocking=True)
            ctx.set_input_shape(self.info.input_name, tuple(xin.shape))
            ctx.set_tensor_address(self.info.input_name, xin.data_ptr())
            outs = []
            for name in self.info.output_names:
                shape = tuple(ctx.get_tensor_shape(name))
                out = torch.empty(shape, dtype=torch.float32, device="cuda")
                ctx.set_tensor_address(name, out.data_ptr())
                outs.append(out)
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            result = [o.cpu().numpy() for o in outs]
        self._stream.synchronize()
        return result

    def close(self) -> None:
        self._context = None
        self._engine = None
