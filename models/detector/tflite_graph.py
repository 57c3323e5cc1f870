"""Read a ``.tflite`` flatbuffer into a small, framework-neutral graph.

The ``tflite`` package parses the flatbuffer; this module turns its first
subgraph into :class:`Graph`: tensors (name, shape, constant data as float32
numpy arrays) and operators (kind, input and output tensor ids, options as a
plain dict). ``DEQUANTIZE`` operators whose input is a constant (the float16
weights of MediaPipe's networks) are folded: their outputs become float32
constants and the operators disappear. Both converters (torch and ONNX) work
from this graph, so they cannot disagree about what the file contains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inscene.engine.errors import InputError

SUPPORTED_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR", "RESHAPE",
    "CONCATENATION", "MEAN", "FULLY_CONNECTED", "LOGISTIC",
})
"""Operators the converters implement (after DEQUANTIZE folding)."""

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDING = {0: "SAME", 1: "VALID"}


@dataclass
class TensorInfo:
    """One tensor of the graph.

    Attributes:
        index: tensor id in the tflite subgraph.
        name: tensor name as stored in the file.
        shape: static shape (tflite layout, NHWC for images).
        dtype: numpy dtype name of the tensor as stored.
        data: constant value as float32 (dequantized), or None for activations.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None


@dataclass
class OpInfo:
    """One operator: ``kind`` (tflite builtin name), tensor ids, options."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A tflite subgraph with constants dequantized (see module doc).

    Attributes:
        tensors: tensor id -> :class:`TensorInfo`.
        ops: operators in execution order (DEQUANTIZE of constants removed).
        inputs: graph input tensor ids.
        outputs: graph output tensor ids.
        source: the file the graph was read from.
    """

    tensors: dict[int, TensorInfo]
    ops: list[OpInfo]
    inputs: list[int]
    outputs: list[int]
    source: str = ""

    def op_counts(self) -> dict[str, int]:
        """Operator kind -> count (after folding)."""
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.kind] = counts.get(op.kind, 0) + 1
        return counts

    def const(self, index: int) -> np.ndarray:
        """The constant value of tensor ``index`` (float32, or int for shape tensors)."""
        data = self.tensors[index].data
        if data is None:
            raise ValueError(f"tensor {index} ({self.tensors[index].name}) is not a constant")
        return data


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _options(tfl: Any, op: Any, kind: str) -> dict[str, Any]:
    """The builtin options of ``op`` as a dict (only the fields the converters use)."""
    table = op.BuiltinOptions()
    classes = {
        "CONV_2D": tfl.Conv2DOptions, "DEPTHWISE_CONV_2D": tfl.DepthwiseConv2DOptions,
        "ADD": tfl.AddOptions, "MAX_POOL_2D": tfl.Pool2DOptions, "RESIZE_BILINEAR": tfl.ResizeBilinearOptions,
        "RESHAPE": tfl.ReshapeOptions, "CONCATENATION": tfl.ConcatenationOptions, "MEAN": tfl.ReducerOptions,
        "FULLY_CONNECTED": tfl.FullyConnectedOptions,
    }
    if kind not in classes or table is None:
        return {}
    o = classes[kind]()
    o.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"):
        out["padding"] = _PADDING[o.Padding()]
        out["stride"] = (o.StrideH(), o.StrideW())
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        out["dilation"] = (o.DilationHFactor(), o.DilationWFactor())
    if kind == "DEPTHWISE_CONV_2D":
        out["depth_multiplier"] = o.DepthMultiplier()
    if kind == "MAX_POOL_2D":
        out["kernel"] = (o.FilterHeight(), o.FilterWidth())
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "CONCATENATION", "FULLY_CONNECTED"):
        out["activation"] = _ACTIVATIONS.get(o.FusedActivationFunction(), str(o.FusedActivationFunction()))
    if kind == "RESIZE_BILINEAR":
        out["align_corners"] = bool(o.AlignCorners())
        out["half_pixel_centers"] = bool(o.HalfPixelCenters())
    if kind == "RESHAPE" and not o.NewShapeIsNone():
        out["new_shape"] = tuple(int(v) for v in o.NewShapeAsNumpy())
    if kind == "CONCATENATION":
        out["axis"] = o.Axis()
    if kind == "MEAN":
        out["keep_dims"] = bool(o.KeepDims())
    if kind == "FULLY_CONNECTED":
        out["keep_num_dims"] = bool(o.KeepNumDims())
        out["weights_format"] = o.WeightsFormat()
    return out


def _tensor_data(model: Any, t: Any, dtype: str) -> np.ndarray | None:
    buf = model.Buffers(t.Buffer())
    if buf is None or buf.DataLength() == 0:
        return None
    raw = buf.DataAsNumpy().tobytes()
    shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    arr = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape)
    q = t.Quantization()
    if dtype in ("int8", "uint8") and q is not None and q.ScaleLength():
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero = q.ZeroPointAsNumpy().astype(np.float32)
        axis = q.QuantizedDimension()
        bshape = [1] * arr.ndim
        if scale.size > 1:
            bshape[axis] = scale.size
        return ((arr.astype(np.float32) - zero.reshape(bshape)) * scale.reshape(bshape)).astype(np.float32)
    if dtype in ("float16", "float32", "float64"):
        return arr.astype(np.float32)
    return arr.copy()


def read_tflite(path: str | Path) -> Graph:
    """Parse ``path`` into a :class:`Graph` (first subgraph, constants dequantized).

    Raises :class:`InputError` naming the file when it is missing or not a tflite
    model, or uses operators outside :data:`SUPPORTED_OPS`.
    """
    import tflite as tfl

    p = Path(path)
    try:
        buf = p.read_bytes()
    except OSError as e:
        raise InputError(str(p), f"cannot read the model file: {e.strerror or e}",
                         "run 'inscene models fetch'") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise InputError(str(p), "not a TensorFlow Lite model (no TFL3 identifier)", "give a .tflite file")
    model = tfl.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise InputError(str(p), "the model has no subgraph")
    op_names = _enum_names(tfl.BuiltinOperator)
    type_names = {k: v.lower() for k, v in _enum_names(tfl.TensorType).items()}
    g = model.Subgraphs(0)
    tensors: dict[int, TensorInfo] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        dtype = {"float16": "float16", "float32": "float32", "int32": "int32", "int64": "int64", "int8": "int8",
                 "uint8": "uint8"}.get(type_names.get(t.Type(), ""), "")
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = _tensor_data(model, t, dtype) if dtype else None
        tensors[i] = TensorInfo(i, t.Name().decode(), shape, dtype or str(t.Type()), data)
    ops: list[OpInfo] = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "UNKNOWN")
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()]
        if kind == "DEQUANTIZE" and tensors[ins[0]].data is not None:
            src = tensors[ins[0]].data
            tensors[outs[0]].data = np.asarray(src, dtype=np.float32)
            continue
        if kind not in SUPPORTED_OPS:
            raise InputError(str(p), f"operator {kind} is not supported by the converter",
                             f"supported: {', '.join(sorted(SUPPORTED_OPS))}")
        ops.append(OpInfo(kind, ins, outs, _options(tfl, op, kind)))
    inputs = [int(v) for v in g.InputsAsNumpy()]
    outputs = [int(v) for v in g.OutputsAsNumpy()]
    return Graph(tensors, ops, inputs, outputs, str(p))
