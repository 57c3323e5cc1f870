"""The two networks in the model runtime, with their pre- and post-processing.

:class:`HandNetworks` loads palm detection and hand landmarks (ONNX converted
from the fetched tflite files, on the backend the runtime picks) and offers the
two steps the tracker combines: :meth:`~HandNetworks.palms` (letterbox the
frame, run, decode, NMS) and :meth:`~HandNetworks.landmarks` (crop every rect,
run all crops as one micro-batch, decode).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from inscene.models.runtime import Model, RuntimeConfig, load_model

from .imaging import crop_rotated, letterbox
from .landmarks import HandLandmarks, decode_landmarks
from .networks import LANDMARK_NET, PALM_NET, NetworkSpec, converted_onnx, torch_network
from .palm import PalmConfig, PalmDetection, decode_palms
from .rects import HandRect


@dataclass
class StepTimes:
    """Milliseconds spent in the last calls, by step (``palm_pre``, ``palm_net``, ...)."""

    ms: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, t0: float) -> float:
        t = time.perf_counter()
        self.ms[key] = self.ms.get(key, 0.0) + (t - t0) * 1e3
        return t


def _load(spec: NetworkSpec, runtime: RuntimeConfig) -> Model:
    return load_model(converted_onnx(spec), runtime, torch_factory=lambda: torch_network(spec))


class HandNetworks:
    """Palm detection and hand landmarks, loaded once.

    Args:
        runtime: backend preference, threads, micro-batch size.
        palm: palm decoding settings.
        mirrored: frames are mirrored (selfie view); flips handedness.
        warmup: run both networks once at load, so the first frame is not slower.
    """

    def __init__(self, runtime: RuntimeConfig | None = None, palm: PalmConfig | None = None,
                 mirrored: bool = False, warmup: bool = True) -> None:
        self.runtime = runtime or RuntimeConfig()
        self.palm_config = palm or PalmConfig()
        self.mirrored = mirrored
        self.palm_model = _load(PALM_NET, self.runtime)
        self.landmark_model = _load(LANDMARK_NET, self.runtime)
        self.times = StepTimes()
        if warmup:
            self.warmup()

    def warmup(self) -> None:
        """Run every step once on a blank frame (JIT compilation, backend allocation)."""
        blank = np.zeros((480, 640, 3), np.uint8)  # large enough for the box-filtered paths too
        self.palms(blank)
        self.landmarks(blank, [HandRect(320.0, 240.0, 100.0, 0.3), HandRect(320.0, 240.0, 600.0, 0.0)])
        self.times.ms.clear()

    @property
    def label(self) -> str:
        """What runs the networks, e.g. ``onnxruntime:CPUExecutionProvider``."""
        labels = {self.palm_model.label, self.landmark_model.label}
        return " + ".join(sorted(labels))

    def describe(self) -> str:
        return f"palm: {self.palm_model.describe()}; landmarks: {self.landmark_model.describe()}"

    def palms(self, image: np.ndarray) -> list[PalmDetection]:
        """Palms in ``image`` (H, W, 3) uint8, image pixels, best first."""
        t = time.perf_counter()
        x, lb = letterbox(image, PALM_NET.size)
        t = self.times.add("palm_pre", t)
        out = self.palm_model(x[None])
        t = self.times.add("palm_net", t)
        palms = decode_palms(out["boxes"][0], out["scores"][0], lb, self.palm_config)
        self.times.add("palm_post", t)
        return palms

    def landmarks(self, image: np.ndarray, rects: list[HandRect]) -> HandLandmarks:
        """Landmarks of the hands in ``rects`` (one network call for all of them)."""
        if not rects:
            z = np.zeros((0, 21, 3), np.float32)
            return HandLandmarks(z, z.copy(), np.zeros(0, np.float32), np.zeros(0, np.float32))
        t = time.perf_counter()
        size = LANDMARK_NET.size
        crops = np.stack([crop_rotated(image, r.cx, r.cy, r.side, r.angle, size) for r in rects])
        t = self.times.add("landmark_pre", t)
        out = self.landmark_model(crops)
        t = self.times.add("landmark_net", t)
        lm = decode_landmarks(out, rects, size, self.mirrored)
        self.times.add("landmark_post", t)
        return lm

    def close(self) -> None:
        self.palm_model.close()
        self.landmark_model.close()
