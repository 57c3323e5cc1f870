"""The tflite -> torch / ONNX converter: the graphs as read, and parity with LiteRT on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from detector_fixtures import MARKED, hand_networks, hand_weights, load_image  # noqa: F401 - fixtures

ALLOWED = {"DEQUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR",
           "RESHAPE", "CONCATENATION", "MEAN", "FULLY_CONNECTED", "LOGISTIC"}


def _graph(name: str):
    from inscene.models.detector.networks import NETWORKS
    from inscene.models.detector.tflite_graph import read_tflite
    from inscene.models.detector.weights import weights_path

    return read_tflite(weights_path(NETWORKS[name].weights))


def test_graphs_use_only_the_listed_operators_and_shapes(hand_weights):
    palm = _graph("palm")
    assert set(palm.op_counts()) <= ALLOWED
    assert palm.tensors[palm.inputs[0]].shape == (1, 192, 192, 3)
    assert [palm.tensors[i].shape for i in palm.outputs] == [(1, 2016, 18), (1, 2016, 1)]
    lm = _graph("landmark")
    assert set(lm.op_counts()) <= ALLOWED
    assert lm.tensors[lm.inputs[0]].shape == (1, 224, 224, 3)
    assert [lm.tensors[i].shape for i in lm.outputs] == [(1, 63), (1, 1), (1, 1), (1, 63)]
    # float16 weights were dequantized (folded): no DEQUANTIZE left, constants are float32
    assert "DEQUANTIZE" not in palm.op_counts() and "DEQUANTIZE" not in lm.op_counts()
    consts = [t for t in lm.tensors.values() if t.data is not None and t.data.dtype.kind == "f"]
    assert consts and all(t.data.dtype == np.float32 for t in consts)


def test_same_padding_is_asymmetric_like_tensorflow():
    from inscene.models.detector.lowering import _same_pads

    assert _same_pads(96, 5, 2, 1) == (1, 2)  # total 3: TensorFlow pads more at the end
    assert _same_pads(96, 2, 2, 1) == (0, 0)
    assert _same_pads(7, 3, 1, 1) == (1, 1)
    assert _same_pads(224, 3, 2, 1) == (0, 1)


def _litert(path, x: np.ndarray) -> dict[str, np.ndarray]:
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert (dev extra) not installed")
    it = litert.Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = {}
    for i in range(x.shape[0]):
        it.set_tensor(inp["index"], x[i:i + 1])
        it.invoke()
        for d in it.get_output_details():
            out.setdefault(d["name"], []).append(it.get_tensor(d["index"]).copy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _inputs(hand_networks) -> tuple[np.ndarray, np.ndarray]:
    """Letterboxed photos for palm detection, hand crops of the photos for the landmarks."""
    from inscene.models.detector.imaging import crop_rotated, letterbox
    from inscene.models.detector.rects import rect_from_palm

    palms, crops = [], []
    for name in MARKED:
        img = load_image(name)
        palms.append(letterbox(img, 192)[0])
        for p in hand_networks.palms(img):
            r = rect_from_palm(p.box, p.keypoints)
            crops.append(crop_rotated(img, r.cx, r.cy, r.side, r.angle, 224))
    return np.stack(palms), np.stack(crops)


def test_converted_networks_match_litert_on_real_photos(hand_networks):
    import torch

    from inscene.models.detector.networks import NETWORKS, converted_onnx, torch_network
    from inscene.models.detector.weights import weights_path
    from inscene.models.runtime import RuntimeConfig, load_model

    palm_x, crop_x = _inputs(hand_networks)
    assert len(palm_x) == 5 and len(crop_x) >= 6
    worst = {}
    for key, x in (("palm", palm_x), ("landmark", crop_x)):
        spec = NETWORKS[key]
        ref = _litert(weights_path(spec.weights), x)
        tfl_names = [f"Identity{'' if i == 0 else f'_{i}'}" for i in range(len(spec.outputs))]
        onnx_out = load_model(converted_onnx(spec), RuntimeConfig(provider="cpu", threads=2))(x)
        with torch.inference_mode():
            torch_out = [t.numpy() for t in torch_network(spec)(torch.from_numpy(x))]
        for k, (name, tfl) in enumerate(zip(spec.outputs, tfl_names)):
            r = ref[tfl].reshape(onnx_out[name].shape)
            worst[f"{key}.{name}.onnx"] = _rel(onnx_out[name], r)
            worst[f"{key}.{name}.torch"] = _rel(torch_out[k], r)
    bad = {k: v for k, v in worst.items() if not v <= 1e-3}
    assert not bad, f"relative error above 1e-3: {bad}"
    print("max relative error vs LiteRT:", {k: f"{v:.1e}" for k, v in worst.items()})
