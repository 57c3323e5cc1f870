"""The hand detector: MediaPipe's palm and landmark networks, converted and run by our own code.

>>> from inscene.models.detector import HandDetector
>>> det = HandDetector()                    # weights from the cache ('inscene models fetch')
>>> frame = det.detect(image)               # a photo: palm detection + landmarks
>>> frame = det.track(video_frame)          # a video: tracking by re-cropping
>>> [(h.side, h.keypoints2d().shape) for h in frame.hands]
[('right', (21, 3))]

Weights: :mod:`.weights` (fetched from the ``mediapipe==0.10.21`` wheel, checked
by sha256). Converter: :mod:`.tflite_graph` -> :mod:`.lowering` ->
:mod:`.torch_net` / :mod:`.onnx_net`. Processing: :mod:`.anchors`, :mod:`.nms`,
:mod:`.palm`, :mod:`.imaging`, :mod:`.rects`, :mod:`.landmarks`,
:mod:`.handedness`, :mod:`.tracker`.
"""

from __future__ import annotations

from .handedness import HandednessVote, assign_sides
from .inference import HandNetworks
from .landmarks import HandLandmarks
from .palm import PalmConfig, PalmDetection
from .rects import HandRect
from .tracker import DetectorConfig, Hand, HandDetector, HandFrame
from .weights import LANDMARK, PALM, WEIGHTS, fetch, missing, weights_path

__all__ = [
    "LANDMARK", "PALM", "WEIGHTS", "DetectorConfig", "Hand", "HandDetector", "HandFrame", "HandLandmarks",
    "HandNetworks", "HandRect", "HandednessVote", "PalmConfig", "PalmDetection", "assign_sides", "fetch",
    "missing", "weights_path",
]
