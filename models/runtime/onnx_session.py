"""ONNX Runtime sessions: TensorRT EP (with an engine cache), CUDA EP or CPU EP."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inscene.engine.errors import InputError

from .model import Model, ModelInfo
from .providers import Choice


def onnx_info(path: Path) -> ModelInfo:
    """The interface of an ONNX file (single input; a symbolic first dimension means batchable)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises several types for bad files
        raise InputError(str(path), f"not a readable ONNX model ({type(e).__name__})", "check the file") from None
    inits = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(str(path), f"has {len(inputs)} inputs; the runtime runs single-input networks")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    batchable = bool(shape) and shape[0] != 1
    return ModelInfo(inputs[0].name, shape, tuple(o.name for o in m.graph.output), batchable)


class OrtModel(Model):
    """An ONNX file in an ONNX Runtime session on the providers of ``choice``.

    ``label`` names the provider the session actually registered first (ONNX
    Runtime may fall back, e.g. when the TensorRT libraries fail to load).
    """

    def __init__(self, path: Path, choice: Choice, threads: int = 0, max_batch: int = 8,
                 info: ModelInfo | None = None) -> None:
        import onnxruntime as ort

        super().__init__(info or onnx_info(path), max_batch)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads > 0:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # Idle worker threads must not spin: the engine runs other stages (and torch) on the same cores.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        names = [p for p, _ in choice.providers]
        opts = [o for _, o in choice.providers]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=names, provider_options=opts)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise InputError(str(path), f"ONNX Runtime cannot load it: {str(e).splitlines()[0]}",
                             "re-create it (delete the file) or check the provider") from None
        self.providers = tuple(self.session.get_providers())
        self.label = f"onnxruntime:{self.providers[0]}"
        self.reason = choice.reason
        if self.providers[0] != names[0]:
            self.reason = f"{names[0]} failed to start, fell back; {choice.reason}"
        self._outputs = list(self.info.output_names)

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self._outputs, {self.info.input_name: x})

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
