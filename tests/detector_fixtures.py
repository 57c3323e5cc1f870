"""Fixtures of the hand-detector tests: the fetched weights, loaded networks, real images.

The weights come from the ``mediapipe==0.10.21`` wheel (~35 MB, once per machine;
then from the cache). When they cannot be had (offline, no ``$INSCENE_WEIGHTS_FROM``)
the tests that need them skip with the fetch error as the reason.

Hand-marked ground truth of ``../shared/data/images`` (read off the photos by eye,
not from any detector): per hand its side, a box that contains the whole hand,
and a few fingertips (MediaPipe indices: 4 thumb tip, 8 index tip, 12 middle tip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from conftest import shared_data


@dataclass(frozen=True)
class MarkedHand:
    """A hand marked by hand on a test photo."""

    side: str
    box: tuple[float, float, float, float]
    """(x0, y0, x1, y1) pixels, the whole hand (wrist to fingertips)."""
    points: dict[int, tuple[float, float]]
    """keypoint index -> pixel position."""


MARKED: dict[str, list[MarkedHand]] = {
    "pointing_up.jpg": [MarkedHand("left", (285, 15, 365, 165), {8: (298, 27)})],
    "victory.jpg": [MarkedHand("right", (60, 140, 190, 345), {8: (173, 160), 12: (97, 153)})],
    "thumbs_up.jpg": [MarkedHand("right", (235, 210, 320, 325), {4: (271, 221)})],
    "thumbs_down.jpg": [MarkedHand("right", (120, 190, 405, 615), {4: (272, 605)})],
    "woman_hands.jpg": [
        MarkedHand("right", (280, 315, 485, 450), {8: (470, 400), 12: (475, 372)}),
        MarkedHand("left", (0, 600, 305, 780), {8: (37, 750), 12: (5, 697)}),
    ],
}


def load_image(name: str) -> np.ndarray:
    """A photo of ../shared/data/images as (H, W, 3) uint8 RGB (skips when absent)."""
    import av

    path = shared_data(f"images/{name}")
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.to_ndarray(format="rgb24")


@pytest.fixture(scope="session")
def hand_weights() -> dict:
    """The cached weight files (fetched once per machine; skip with the reason when impossible)."""
    from inscene.engine.errors import InputError
    from inscene.models.detector import fetch

    try:
        return fetch()
    except InputError as e:
        pytest.skip(f"hand detector weights unavailable: {e}")


@pytest.fixture(scope="session")
def hand_networks(hand_weights):
    """Both networks on the runtime's default backend (loaded once)."""
    from inscene.models.detector import HandNetworks
    from inscene.models.runtime import RuntimeConfig

    nets = HandNetworks(RuntimeConfig(threads=2))
    yield nets
    nets.close()
