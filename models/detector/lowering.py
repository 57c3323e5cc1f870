"""Lower a tflite :class:`~.tflite_graph.Graph` to a channels-first network description.

TensorFlow Lite stores images as NHWC; torch and ONNX convolutions want NCHW. The
lowering keeps every 4-D activation channels-first and records, per operator,
what an NCHW framework must do: weights re-laid out (``OIHW``), TensorFlow's
``SAME`` padding made explicit (it is asymmetric for strided convolutions:
``before = total // 2``, ``after = total - before``), axes of reductions,
concatenations and paddings mapped from NHWC to NCHW, and a transpose back to
NHWC wherever the original graph reinterprets memory (``RESHAPE``) or returns a
4-D tensor. The batch dimension is left free (reshapes keep dimension 0), so the
converted networks accept a batch of any size — the model runtime micro-batches
hand crops through that. The converted network keeps the tflite interface: the
input is ``(B, H, W, 3)`` float32, the outputs have the tflite shapes with ``B``
in front.

Both emitters (:mod:`.torch_net` and :mod:`.onnx_net`) read the same
:class:`NetIR`, one :class:`Node` per operator, so they compute the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tflite_graph import Graph

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


@dataclass
class Node:
    """One lowered operator.

    ``kind`` is one of: ``to_nchw``, ``to_nhwc``, ``conv`` (grouped convolution,
    weight ``(O, I/groups, kh, kw)``), ``maxpool``, ``pad`` (NCHW ``pads`` as
    ``(before, after)`` per axis), ``prelu`` (``alpha`` ``(C,)``), ``add``, ``resize``
    (bilinear, ``scale`` (sh, sw), ``mode`` ``half_pixel``/``align_corners``/
    ``asymmetric``), ``reshape`` (``shape`` with 0 = keep the batch), ``concat``,
    ``mean`` (``axes``, ``keepdims``), ``fc`` (weight ``(O, I)``), ``sigmoid``.
    ``act`` is the fused activation (``NONE``, ``RELU``, ``RELU6``).
    """

    kind: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    act: str = "NONE"


@dataclass
class NetIR:
    """A lowered network: nodes in order, named input/outputs and the tflite shapes."""

    nodes: list[Node]
    input_name: str
    input_shape: tuple[int, ...]
    """tflite input shape, ``(1, H, W, C)``."""
    output_names: list[str]
    output_shapes: list[tuple[int, ...]]
    """tflite output shapes (batch 1 first)."""
    tflite_output_names: list[str]


def _same_pads(size: int, k: int, stride: int, dil: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
    return total // 2, total - total // 2


def _t(i: int) -> str:
    return f"t{i}"


def lower(graph: Graph) -> NetIR:
    """Lower ``graph`` (see the module doc). Raises ValueError for a layout it cannot map."""
    nodes: list[Node] = []
    nchw: set[str] = set()  # names of tensors held channels-first
    (inp,) = graph.inputs
    in_shape = graph.tensors[inp].shape
    name_of: dict[int, str] = {}
    if len(in_shape) == 4:
        nodes.append(Node("to_nchw", ["input"], _t(inp)))
        nchw.add(_t(inp))
        name_of[inp] = _t(inp)
    else:
        name_of[inp] = "input"

    def src(i: int) -> str:
        return name_of[i]

    def as_nhwc(i: int) -> str:
        n = src(i)
        if n in nchw:
            out = n + "_nhwc"
            if not any(x.output == out for x in nodes):
                nodes.append(Node("to_nhwc", [n], out))
            return out
        return n

    for op in graph.ops:
        o = op.options
        out_i = op.outputs[0]
        out = _t(out_i)
        out_shape = graph.tensors[out_i].shape
        act = o.get("activation", "NONE")
        if act not in ("NONE", "RELU", "RELU6"):
            raise ValueError(f"fused activation {act} is not supported")
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x_shape = graph.tensors[op.inputs[0]].shape
            w = graph.const(op.inputs[1])
            b = graph.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            kh, kw = w.shape[1], w.shape[2]
            if op.kind == "CONV_2D":
                weight = np.ascontiguousarray(w.transpose(0, 3, 1, 2))  # OHWI -> OIHW
                groups = 1
            else:
                cin = x_shape[3]
                weight = np.ascontiguousarray(w[0].transpose(2, 0, 1)[:, None])  # (1,kh,kw,C*m) -> (C*m,1,kh,kw)
                groups = cin
            sh, sw = o["stride"]
            dh, dw = o["dilation"]
            if o["padding"] == "SAME":
                pt, pb = _same_pads(x_shape[1], kh, sh, dh)
                pl, pr = _same_pads(x_shape[2], kw, sw, dw)
            else:
                pt = pb = pl = pr = 0
            if b is None:
                b = np.zeros(weight.shape[0], np.float32)
            nodes.append(Node("conv", [src(op.inputs[0])], out,
                              {"weight": weight, "bias": b.astype(np.float32), "stride": (sh, sw),
                               "dilation": (dh, dw), "pads": (pt, pl, pb, pr), "groups": groups}, act))
            nchw.add(out)
        elif op.kind == "MAX_POOL_2D":
            x_shape = graph.tensors[op.inputs[0]].shape
            kh, kw = o["kernel"]
            sh, sw = o["stride"]
            if o["padding"] == "SAME":
                pt, pb = _same_pads(x_shape[1], kh, sh, 1)
                pl, pr = _same_pads(x_shape[2], kw, sw, 1)
            else:
                pt = pb = pl = pr = 0
            nodes.append(Node("maxpool", [src(op.inputs[0])], out,
                              {"kernel": (kh, kw), "stride": (sh, sw), "pads": (pt, pl, pb, pr)}, act))
            nchw.add(out)
        elif op.kind == "PAD":
            pads = graph.const(op.inputs[1]).astype(np.int64)  # (rank, 2), tflite axis order
            x = src(op.inputs[0])
            if x in nchw:
                order = [0, 3, 1, 2]
                pads = pads[order]
                nchw.add(out)
            nodes.append(Node("pad", [x], out, {"pads": tuple(map(tuple, pads.tolist()))}))
        elif op.kind == "PRELU":
            alpha = graph.const(op.inputs[1])
            x = src(op.inputs[0])
            if x not in nchw or alpha.size != alpha.shape[-1]:
                raise ValueError("PRELU is supported on channels-last images with per-channel alpha only")
            nodes.append(Node("prelu", [x], out, {"alpha": alpha.reshape(-1).astype(np.float32)}))
            nchw.add(out)
        elif op.kind == "ADD":
            a, b_ = op.inputs[:2]
            for i in (a, b_):
                if graph.tensors[i].data is not None:
                    raise ValueError("ADD with a constant operand is not supported")
            xa, xb = src(a), src(b_)
            if (xa in nchw) != (xb in nchw):
                xa, xb = as_nhwc(a), as_nhwc(b_)
            elif xa in nchw:
                nchw.add(out)
            nodes.append(Node("add", [xa, xb], out, act=act))
        elif op.kind == "RESIZE_BILINEAR":
            x_shape = graph.tensors[op.inputs[0]].shape
            if o["align_corners"]:
                mode = "align_corners"
            elif o["half_pixel_centers"]:
                mode = "half_pixel"
            else:
                mode = "asymmetric"
            scale = (out_shape[1] / x_shape[1], out_shape[2] / x_shape[2])
            nodes.append(Node("resize", [src(op.inputs[0])], out,
                              {"scale": scale, "size": (out_shape[1], out_shape[2]), "mode": mode}))
            nchw.add(out)
        elif op.kind == "RESHAPE":
            x = as_nhwc(op.inputs[0])
            shape = list(out_shape)
            if shape and shape[0] == 1 and graph.tensors[op.inputs[0]].shape[0] == 1:
                shape[0] = 0  # keep the batch
            nodes.append(Node("reshape", [x], out, {"shape": tuple(shape)}))
        elif op.kind == "CONCATENATION":
            xs = [src(i) for i in op.inputs]
            axis = o["axis"] % len(out_shape)
            if all(x in nchw for x in xs) and len(out_shape) == 4:
                axis = _NHWC_TO_NCHW_AXIS[axis]
                nchw.add(out)
            else:
                xs = [as_nhwc(i) for i in op.inputs]
            nodes.append(Node("concat", xs, out, {"axis": axis}, act))
        elif op.kind == "MEAN":
            axes = [int(v) % 4 for v in graph.const(op.inputs[1]).reshape(-1)]
            x = src(op.inputs[0])
            keep = o["keep_dims"]
            if x in nchw and sorted(axes) == [1, 2]:
                nodes.append(Node("mean", [x], out, {"axes": (2, 3), "keepdims": keep}))
                if keep:
                    nchw.add(out)
            else:
                nodes.append(Node("mean", [as_nhwc(op.inputs[0])], out, {"axes": tuple(axes), "keepdims": keep}))
        elif op.kind == "FULLY_CONNECTED":
            if o["weights_format"] != 0 or o["keep_num_dims"]:
                raise ValueError("FULLY_CONNECTED: only the default weights format without keep_num_dims")
            w = graph.const(op.inputs[1])
            b = graph.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else np.zeros(w.shape[0])
            x = as_nhwc(op.inputs[0])
            nodes.append(Node("fc", [x], out, {"weight": w.astype(np.float32), "bias": b.astype(np.float32),
                                               "in_features": w.shape[1]}, act))
        elif op.kind == "LOGISTIC":
            x = src(op.inputs[0])
            if x in nchw:
                nchw.add(out)
            nodes.append(Node("sigmoid", [x], out))
        else:  # pragma: no cover - read_tflite rejects unknown operators
            raise ValueError(f"operator {op.kind} is not supported")
        name_of[out_i] = out

    out_names = []
    for k, i in enumerate(graph.outputs):
        final = f"output_{k}"
        nodes.append(Node("identity", [as_nhwc(i)], final))
        out_names.append(final)
    return NetIR(nodes, "input", tuple(in_shape), out_names, [graph.tensors[i].shape for i in graph.outputs],
                 [graph.tensors[i].name for i in graph.outputs])
