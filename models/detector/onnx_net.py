"""The ONNX emitter: a lowered network (:class:`~.lowering.NetIR`) as an ONNX model.

The graph is written node by node with ``onnx.helper`` (opset 17, no exporter
tracing involved): one or two ONNX nodes per lowered node, weights as float32
initializers. The input is ``(batch, H, W, C)`` float32 with a symbolic batch
dimension; outputs keep the tflite shapes with ``batch`` first, so ONNX Runtime
and TensorRT can run several crops in one call.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .lowering import NetIR

OPSET = 17


def to_onnx(ir: NetIR, graph_name: str = "converted", doc: str = "") -> onnx.ModelProto:
    """Build the ONNX model of ``ir`` (checked with ``onnx.checker``)."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    for k, n in enumerate(ir.nodes):
        a = n.attrs
        out = n.output if n.act == "NONE" else f"{n.output}_pre"
        if n.kind == "to_nchw":
            nodes.append(helper.make_node("Transpose", n.inputs, [out], perm=[0, 3, 1, 2]))
        elif n.kind == "to_nhwc":
            nodes.append(helper.make_node("Transpose", n.inputs, [out], perm=[0, 2, 3, 1]))
        elif n.kind == "conv":
            w = const(f"n{k}_w", a["weight"])
            b = const(f"n{k}_b", a["bias"])
            kh, kw = a["weight"].shape[2:]
            pt, pl, pb, pr = a["pads"]
            nodes.append(helper.make_node("Conv", [n.inputs[0], w, b], [out], kernel_shape=[kh, kw],
                                          strides=list(a["stride"]), dilations=list(a["dilation"]),
                                          pads=[pt, pl, pb, pr], group=a["groups"]))
        elif n.kind == "maxpool":
            pt, pl, pb, pr = a["pads"]
            nodes.append(helper.make_node("MaxPool", n.inputs, [out], kernel_shape=list(a["kernel"]),
                                          strides=list(a["stride"]), pads=[pt, pl, pb, pr]))
        elif n.kind == "pad":
            pads = np.array(a["pads"], dtype=np.int64)
            p = const(f"n{k}_pads", np.concatenate([pads[:, 0], pads[:, 1]]))
            nodes.append(helper.make_node("Pad", [n.inputs[0], p], [out], mode="constant"))
        elif n.kind == "prelu":
            s = const(f"n{k}_slope", a["alpha"].reshape(-1, 1, 1))
            nodes.append(helper.make_node("PRelu", [n.inputs[0], s], [out]))
        elif n.kind == "add":
            nodes.append(helper.make_node("Add", n.inputs, [out]))
        elif n.kind == "resize":
            scales = const(f"n{k}_scales", np.array([1.0, 1.0, *a["scale"]], dtype=np.float32))
            nodes.append(helper.make_node("Resize", [n.inputs[0], "", scales], [out], mode="linear",
                                          coordinate_transformation_mode=a["mode"]))
        elif n.kind == "reshape":
            shape = const(f"n{k}_shape", np.array(a["shape"], dtype=np.int64))
            nodes.append(helper.make_node("Reshape", [n.inputs[0], shape], [out]))
        elif n.kind == "concat":
            nodes.append(helper.make_node("Concat", n.inputs, [out], axis=a["axis"]))
        elif n.kind == "mean":
            nodes.append(helper.make_node("ReduceMean", n.inputs, [out], axes=list(a["axes"]),
                                          keepdims=int(a["keepdims"])))
        elif n.kind == "fc":
            w = const(f"n{k}_w", a["weight"])
            b = const(f"n{k}_b", a["bias"])
            flat = f"{n.output}_flat"
            nodes.append(helper.make_node("Flatten", [n.inputs[0]], [flat], axis=1))
            nodes.append(helper.make_node("Gemm", [flat, w, b], [out], transB=1))
        elif n.kind == "sigmoid":
            nodes.append(helper.make_node("Sigmoid", n.inputs, [out]))
        elif n.kind == "identity":
            nodes.append(helper.make_node("Identity", n.inputs, [out]))
        else:  # pragma: no cover
            raise ValueError(f"unknown lowered node {n.kind}")
        if n.act == "RELU":
            nodes.append(helper.make_node("Relu", [out], [n.output]))
        elif n.act == "RELU6":
            lo = const(f"n{k}_lo", np.array(0.0, np.float32))
            hi = const(f"n{k}_hi", np.array(6.0, np.float32))
            nodes.append(helper.make_node("Clip", [out, lo, hi], [n.output]))

    _, h, w, c = ir.input_shape
    inputs = [helper.make_tensor_value_info(ir.input_name, TensorProto.FLOAT, ["batch", h, w, c])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *shape[1:]])
               for name, shape in zip(ir.output_names, ir.output_shapes)]
    graph = helper.make_graph(nodes, graph_name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="inscene.models.detector", doc_string=doc)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
