"""The two converted networks: their interfaces, the cached ONNX files, the torch modules.

==================  ===================  ============================================
network             input                outputs (``B`` = batch)
==================  ===================  ============================================
palm detection      (B, 192, 192, 3)     ``boxes`` (B, 2016, 18): per anchor a box
                    RGB in [0, 1]        (dx, dy, w, h) and 7 palm keypoints (dx, dy),
                                         pixels of the 192 input; ``scores`` (B, 2016, 1)
                                         logits
hand landmarks      (B, 224, 224, 3)     ``landmarks`` (B, 63): 21 x (x, y, z) pixels
                    RGB in [0, 1]        of the 224 crop; ``presence`` (B, 1) and
                                         ``handedness`` (B, 1) probabilities;
                                         ``world`` (B, 63): 21 x 3 metres, hand-centred
==================  ===================  ============================================

The ONNX files are converted from the cached ``.tflite`` files on first use and
cached next to them, keyed by the tflite digest and :data:`CONVERTER_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inscene.engine.cache import build_once

from .weights import LANDMARK, PALM, WeightFile, cached_path, weights_path

CONVERTER_VERSION = 1
"""Bumped whenever the converter's output changes, to invalidate cached ONNX files."""


@dataclass(frozen=True)
class NetworkSpec:
    """A converted network's interface.

    Attributes:
        weights: the tflite file it is converted from.
        size: input side in pixels (square input).
        outputs: semantic names of the outputs, in the tflite output order.
    """

    weights: WeightFile
    size: int
    outputs: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.weights.name


PALM_NET = NetworkSpec(PALM, 192, ("boxes", "scores"))
LANDMARK_NET = NetworkSpec(LANDMARK, 224, ("landmarks", "presence", "handedness", "world"))
NETWORKS: dict[str, NetworkSpec] = {"palm": PALM_NET, "landmark": LANDMARK_NET}


def onnx_path(spec: NetworkSpec) -> Path:
    """Where the converted ONNX of ``spec`` is cached (may not exist yet)."""
    return cached_path(spec.weights).with_name(
        f"{spec.name}.{spec.weights.sha256[:12]}.v{CONVERTER_VERSION}.onnx")


def _convert(spec: NetworkSpec, tflite: Path, dest: Path) -> None:
    from .lowering import lower
    from .onnx_net import to_onnx
    from .tflite_graph import read_tflite

    ir = lower(read_tflite(tflite))
    _rename_outputs(ir, spec)
    model = to_onnx(ir, graph_name=spec.name,
                    doc=f"converted by inscene (converter v{CONVERTER_VERSION}) from {spec.weights.member} "
                        f"of mediapipe 0.10.21 (Apache-2.0)")
    dest.write_bytes(model.SerializeToString())


def _rename_outputs(ir, spec: NetworkSpec) -> None:  # noqa: ANN001 - NetIR, imported lazily
    names = dict(zip(ir.output_names, spec.outputs))
    for n in ir.nodes:
        if n.output in names:
            n.output = names[n.output]
    ir.output_names = [names[o] for o in ir.output_names]


def converted_onnx(spec: NetworkSpec) -> Path:
    """The cached ONNX file of ``spec``, converting it from the tflite on first use.

    Raises :class:`~inscene.engine.errors.InputError` (with instructions) when
    the weights have not been fetched.
    """
    target = onnx_path(spec)
    if not target.exists():
        tflite = weights_path(spec.weights)
        build_once(target, lambda tmp: _convert(spec, tflite, tmp))
    return target


def torch_network(spec: NetworkSpec):  # noqa: ANN201 - TFLiteNet, torch imported lazily
    """The torch reference module of ``spec`` (eval mode), converted from the cached tflite."""
    from .lowering import lower
    from .tflite_graph import read_tflite
    from .torch_net import TFLiteNet

    ir = lower(read_tflite(weights_path(spec.weights)))
    _rename_outputs(ir, spec)
    return TFLiteNet(ir).eval()
