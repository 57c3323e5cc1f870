"""What a synthetic scene is made of: frozen, documented settings and the named presets.

A preset fixes the scenario (object, hands, camera, size, length); the seed draws
everything else (object size and texture, hand size and skin tone, grasp, paths,
camera placement and head motion), so ``(preset, seed)`` names one scene exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from inscene.engine.errors import InputError

OBJECTS = ("box", "cylinder", "cup", "mug", "bottle", "ycb:025_mug", "ycb:006_mustard_bottle")
CAMERAS = ("static", "ego")
SCENARIOS = ("pick_place", "handover")


@dataclass(frozen=True)
class MotionConfig:
    """The manipulation: approach, grasp, lift, move and rotate, place, release, retreat."""

    lift_height: tuple[float, float] = (0.08, 0.14)
    """Range of the lift above the table, metres."""
    move_distance: tuple[float, float] = (0.06, 0.16)
    """Range of the horizontal displacement between pick and place, metres."""
    yaw_deg: tuple[float, float] = (30.0, 80.0)
    """Range of the rotation about the vertical while moving, degrees (sign drawn)."""
    tilt_deg: tuple[float, float] = (10.0, 30.0)
    """Range of the mid-air tilt (a pour-like rotation, back upright before placing), degrees."""
    pregrasp_distance: float = 0.07
    """How far the hand backs off from the grasp along the approach direction before closing, metres."""
    start_distance: tuple[float, float] = (0.22, 0.32)
    """Range of the hand's start distance from the object, metres."""

    def __post_init__(self) -> None:
        for name in ("lift_height", "move_distance", "yaw_deg", "tilt_deg", "start_distance"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise InputError(f"motion.{name}", f"range ({lo}, {hi}) must satisfy 0 <= low <= high")


@dataclass(frozen=True)
class SceneConfig:
    """One synthetic scene (see the presets); lossless to and from a dict."""

    name: str = "custom"
    """Preset name (recorded in the store)."""
    size: tuple[int, int] = (640, 480)
    """Image width, height, pixels."""
    fps: float = 30.0
    """Frame rate."""
    n_frames: int = 120
    """Frames."""
    camera: str = "static"
    """``static`` (a tripod beside the table) or ``ego`` (head-mounted, moving)."""
    fov_deg: float = 60.0
    """Horizontal field of view, degrees."""
    object: str = "mug"
    """``box``, ``cylinder``, ``cup``, ``mug``, ``bottle`` (procedural) or ``ycb:NAME`` (a scan in
    ../shared/data/ycb; the closest procedural shape stands in when the scan is absent)."""
    scenario: str = "pick_place"
    """``pick_place`` (the right hand) or ``handover`` (right picks up, hands over to the left, which places)."""
    motion: MotionConfig = field(default_factory=MotionConfig)
    """The manipulation's ranges."""
    image_noise: float = 2.0
    """Std of the Gaussian sensor noise added to the RGB frames, grey levels (0: none)."""
    store_vertices: bool = True
    """Write the hands' mesh vertices (float16) per frame."""
    store_rgb: bool = False
    """Also write the exact RGB frames into the store (``gt/rgb``; the mp4 is lossy)."""
    chunk_frames: int = 16
    """Frames per chunk of the store (images make large chunks)."""

    def __post_init__(self) -> None:
        w, h = self.size
        if not (32 <= w <= 4096 and 32 <= h <= 4096):
            raise InputError(f"size {w}x{h}", "image size out of range", "use 32..4096 pixels per side")
        if self.n_frames < 24:
            raise InputError(f"n_frames {self.n_frames}", "too few frames for a manipulation", "use at least 24")
        if not 1.0 <= self.fps <= 240.0:
            raise InputError(f"fps {self.fps}", "frame rate out of range", "use 1..240")
        if self.camera not in CAMERAS:
            raise InputError(f"camera '{self.camera}'", "unknown camera", f"use one of {', '.join(CAMERAS)}")
        if self.scenario not in SCENARIOS:
            raise InputError(f"scenario '{self.scenario}'", "unknown scenario", f"use one of {', '.join(SCENARIOS)}")
        if self.object not in OBJECTS:
            raise InputError(f"object '{self.object}'", "unknown object", f"use one of {', '.join(OBJECTS)}")
        if not 20.0 <= self.fov_deg <= 120.0:
            raise InputError(f"fov_deg {self.fov_deg}", "field of view out of range", "use 20..120 degrees")

    @property
    def hands(self) -> tuple[str, ...]:
        """The hands in the scene."""
        return ("right", "left") if self.scenario == "handover" else ("right",)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneConfig:
        d = dict(d)
        motion = MotionConfig(**{k: tuple(v) for k, v in d.pop("motion", {}).items()})
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}, motion=motion)


PRESETS: dict[str, SceneConfig] = {
    # small and fast, for tests
    "tiny": SceneConfig("tiny", (320, 240), 30.0, 48, "static", 60.0, "box"),
    "tiny_ego": SceneConfig("tiny_ego", (320, 240), 30.0, 48, "ego", 80.0, "cylinder"),
    "tiny_handover": SceneConfig("tiny_handover", (320, 240), 30.0, 60, "static", 60.0, "bottle", "handover"),
    # realistic, for benchmarks
    "mug_static": SceneConfig("mug_static", (640, 480), 30.0, 120, "static", 60.0, "mug"),
    "cup_ego": SceneConfig("cup_ego", (640, 480), 30.0, 120, "ego", 80.0, "cup"),
    "box_ego": SceneConfig("box_ego", (640, 480), 30.0, 150, "ego", 80.0, "box"),
    "ycb_mug_ego": SceneConfig("ycb_mug_ego", (640, 480), 30.0, 120, "ego", 80.0, "ycb:025_mug"),
    "ycb_mustard_static": SceneConfig("ycb_mustard_static", (640, 480), 30.0, 120, "static", 60.0,
                                      "ycb:006_mustard_bottle"),
    "handover_static": SceneConfig("handover_static", (640, 480), 30.0, 180, "static", 60.0, "bottle", "handover"),
    "handover_ego": SceneConfig("handover_ego", (640, 480), 30.0, 180, "ego", 80.0, "ycb:006_mustard_bottle",
                                "handover"),
}
"""The named presets: ``tiny*`` for tests (320x240, 48-60 frames), the others for benchmarks."""


def preset(name: str, **overrides: Any) -> SceneConfig:
    """The preset ``name``, with fields replaced by ``overrides`` (e.g. ``n_frames=60``)."""
    if name not in PRESETS:
        raise InputError(f"preset '{name}'", "unknown preset", f"use one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides) if overrides else PRESETS[name]
