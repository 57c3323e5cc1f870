"""Export the fixed-shape hand forward to ONNX and run it with ONNX Runtime.

Graph inputs ``global_orient`` (B, 3), ``hand_pose`` (B, P, 3), ``transl`` (B, 3);
outputs ``vertices`` (B, V, 3) and ``keypoints`` (B, 21, 3), float32, B dynamic.
Uses the TorchScript-based exporter (the dynamo exporter needs ``onnxscript``,
which is not a dependency).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from .model import HandModel

INPUT_NAMES = ("global_orient", "hand_pose", "transl")
OUTPUT_NAMES = ("vertices", "keypoints")
OPSET = 17


def export_onnx(model: HandModel, path: str | Path | None = None, betas: torch.Tensor | None = None) -> bytes:
    """Export ``model`` with its shape fixed to ``betas`` (default: zero).

    Args:
        path: where to write the .onnx file (optional).
        betas: (S,) or (1, S) shape to bake in.
    Returns:
        The serialized ONNX model.
    """
    fixed = model.fixed_shape(betas).to(torch.float32).eval()
    args = (torch.zeros(2, 3), torch.zeros(2, model.num_pose_joints, 3), torch.zeros(2, 3))
    buffer = io.BytesIO()
    dynamic = {name: {0: "batch"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(fixed, args, buffer, dynamo=False, input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, opset_version=OPSET)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


class OnnxHand:
    """The exported forward in an ONNX Runtime session (CPU unless other providers are given)."""

    def __init__(self, onnx_model: bytes | str | Path, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
        self.session = ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])

    def __call__(self, global_orient: np.ndarray, hand_pose: np.ndarray,
                 transl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3), (B, P, 3), (B, 3) -> vertices (B, V, 3), keypoints (B, 21, 3), float32."""
        feeds = {"global_orient": np.asarray(global_orient, np.float32), "hand_pose": np.asarray(hand_pose, np.float32),
                 "transl": np.asarray(transl, np.float32)}
        vertices, keypoints = self.session.run(list(OUTPUT_NAMES), feeds)
        return vertices, keypoints
