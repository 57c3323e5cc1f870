"""Run configuration: frozen dataclasses, validated, lossless to and from dicts.

A config is built from defaults, then a TOML file (``--config``), then flags and
``--set section.key=value`` overrides, in that order. Every field is checked when
the config is built (types and ranges); an unknown key or a bad value raises
:class:`ConfigError` naming the key. The resolved config is written into the
store's attributes (``to_dict``) and read back losslessly (``from_dict``).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


def _check(cond: bool, key: str, value: Any, what: str) -> None:
    if not cond:
        raise ConfigError(f"config '{key}'", f"invalid value {value!r}", what)


@dataclass(frozen=True)
class SourceConfig:
    start: int = 0
    """First source frame to process (0-based index into the source's frames)."""
    end: int | None = None
    """Source frame index to stop before (exclusive); None reads to the end."""
    stride: int = 1
    """Process every stride-th frame from ``start``."""
    fps: float | None = None
    """Frame rate for sources without timestamps (image folders); None: 30."""
    live: bool | None = None
    """Force live (drop-oldest) or file (never drop) behaviour; None decides by source kind."""
    queue_size: int = 8
    """Frames buffered between a live source and the engine before the oldest is dropped."""
    reconnect_attempts: int = 5
    """Network streams: reconnects tried after a failure before giving up."""
    reconnect_backoff_s: float = 0.5
    """Network streams: first wait before reconnecting; doubles each attempt."""
    reconnect_backoff_max_s: float = 8.0
    """Network streams: upper bound of the wait between reconnects."""
    timeout_s: float = 10.0
    """Network streams and webcams: give up opening or reading after this long."""

    def __post_init__(self) -> None:
        _check(self.start >= 0, "source.start", self.start, "must be >= 0")
        _check(self.end is None or self.end > self.start, "source.end", self.end, "must be > start")
        _check(self.stride >= 1, "source.stride", self.stride, "must be >= 1")
        _check(self.fps is None or self.fps > 0, "source.fps", self.fps, "must be > 0")
        _check(self.queue_size >= 1, "source.queue_size", self.queue_size, "must be >= 1")
        _check(self.reconnect_attempts >= 0, "source.reconnect_attempts", self.reconnect_attempts, "must be >= 0")
        _check(self.reconnect_backoff_s > 0, "source.reconnect_backoff_s", self.reconnect_backoff_s, "must be > 0")
        _check(self.reconnect_backoff_max_s >= self.reconnect_backoff_s, "source.reconnect_backoff_max_s",
               self.reconnect_backoff_max_s, "must be >= reconnect_backoff_s")
        _check(self.timeout_s > 0, "source.timeout_s", self.timeout_s, "must be > 0")


@dataclass(frozen=True)
class CameraConfig:
    intrinsics: tuple[float, float, float, float] | None = None
    """Pinhole intrinsics (fx, fy, cx, cy) in pixels; None uses ``fov_deg``."""
    fov_deg: float = 60.0
    """Horizontal field of view assumed when no intrinsics are given."""

    def __post_init__(self) -> None:
        if self.intrinsics is not None:
            _check(len(self.intrinsics) == 4 and all(v > 0 for v in self.intrinsics[:2]),
                   "camera.intrinsics", self.intrinsics, "give fx,fy,cx,cy with fx, fy > 0")
        _check(1.0 <= self.fov_deg <= 179.0, "camera.fov_deg", self.fov_deg, "must be in [1, 179]")


@dataclass(frozen=True)
class HandsConfig:
    enabled: bool = True
    """Detect, track and fit hands (off: the engine runs without the hand stages)."""
    model: str = "auto"
    """Hand model: ``anny`` (open default), ``mano`` (needs ``mano_dir``) or ``auto`` (MANO when a folder is given)."""
    mano_dir: str | None = None
    """Folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (or their npz from ``inscene mano import``); else $INSCENE_MANO_DIR."""

    provider: str = "auto"
    """Model runtime for the detector networks: auto, tensorrt, cuda, cpu, torch (see inscene.models.runtime)."""
    threads: int = 1
    """CPU threads of the detector networks (0: the runtime's default). One: the networks are small, and a second
    thread cost more CPU than it saved time (ONNX Runtime, landmarks 7.5 ms on one thread, 12.4 ms of CPU for
    7.6 ms on two; palms 16 ms, 23 ms of CPU for 14.5 ms) while the engine's other stages want the other core."""
    max_hands: int = 2
    """Hands tracked at most."""
    search_interval: int = 10
    """Frames between palm searches while fewer than ``max_hands`` are tracked."""
    mirrored: bool = False
    """The video is mirrored (selfie view): flips handedness."""
    use_landmarks3d: bool = True
    """Fit the detector's relative 3D keypoints too (better 3D pose; ~1 ms more per hand)."""
    fit_threads: int = 1
    """torch threads for the fit (process-wide, applied at setup; 0 leaves torch's default)."""
    detector_history: int = 30
    """Frames replayed on resume to rebuild the tracks and the handedness votes."""

    def __post_init__(self) -> None:
        _check(self.model in ("auto", "anny", "mano"), "hands.model", self.model, "choose auto, anny or mano")
        _check(1 <= self.max_hands <= 2, "hands.max_hands", self.max_hands, "must be 1 or 2")
        _check(self.search_interval >= 1, "hands.search_interval", self.search_interval, "must be >= 1")
        _check(self.threads >= 0 and self.fit_threads >= 0, "hands.threads", self.threads, "must be >= 0")
        _check(self.detector_history >= 0, "hands.detector_history", self.detector_history, "must be >= 0")


@dataclass(frozen=True)
class ObjectConfig:
    mesh: str | None = None
    """Mesh of the manipulated object (any file trimesh reads); None: no object."""
    units: str = "auto"
    """Units of the mesh file: auto (from its size), m, cm or mm."""
    poses: str | None = None
    """Object poses from another tracker (4x4 text files, npz, BOP scene_gt.json)."""
    obj_id: int | None = None
    """Which object of a multi-object BOP file."""
    box: str | None = None
    """Where the object is in the first processed frame, "x,y,w,h" pixels: starts the region tracker."""
    init: str | None = None
    """JSON starting the region tracker: {"box": [x,y,w,h]}, {"mask": "m.png"} or {"T_cam_obj": 4x4}, opt. "frame"."""
    hand_occlusion: bool = True
    """Discount the tracker's correspondence lines that fall on the detected hands."""

    def __post_init__(self) -> None:
        _check(self.units in ("auto", "m", "cm", "mm"), "object.units", self.units, "choose auto, m, cm or mm")


@dataclass(frozen=True)
class WindowConfig:
    """Stage 1: the sliding-window interaction optimizer (``engine/window``)."""

    enabled: bool = True
    """Run the window after the per-frame fit (off: the per-frame fit is the result)."""
    size: int = 16
    """Frames in the window (W)."""
    stride: int = 10
    """Frames the window advances per solve; a frame is decided W - stride to W - 1 frames after it arrived."""
    iterations: int = 2
    """Levenberg-Marquardt iterations per window (warm-started from the previous window)."""
    first_iterations: int = 8
    """Iterations of the first window of a hand track (cold)."""
    sigma_px: float = 2.0
    """2D keypoint noise scale, pixels."""
    robust_px: float = 12.0
    """Geman-McClure scale of the 2D term, pixels."""
    sigma_3d: float = 0.01
    """Noise scale of the detector's relative 3D keypoints, metres (0 disables the term); with ``sigma_3d_rate``
    the starting value of an estimate."""
    sigma_3d_rate: float = 0.3
    """After each solve, ``sigma_3d`` moves this share of the way to the solved hand's RMS residual against the
    detector's relative 3D keypoints (per coordinate, within 3-20 mm): the window learns how good the detector's
    3D keypoints are (0: ``sigma_3d`` stays fixed)."""
    contact_weight: float = 1.0
    """Weight of the lifted contact term (0 disables it: ablation "without contact")."""
    sigma_contact: float = 0.004
    """Contact residual scale, metres."""
    sdf_weight: float = 1.0
    """Weight of the SDF penetration term (0 disables it: ablation "without SDF")."""
    sigma_penetration: float = 0.02
    """Penetration residual scale, metres."""
    smooth_weight: float = 1.0
    """Weight of the temporal terms (0 disables them: ablation "without smoothness")."""
    sigma_accel: float = 0.004
    """Keypoint acceleration scale, metres per frame squared, at 0.5 m depth (scaled with depth)."""
    sigma_velocity: float = 0.03
    """Keypoint velocity scale, metres per frame, at 0.5 m depth (scaled with depth)."""
    rigidity_weight: float = 1.0
    """Weight of hand-object relative rigidity while in contact (no sliding)."""
    sigma_rigid: float = 0.003
    """Relative motion scale in the object frame while grasped, metres per frame."""
    prior_weight: float = 1.0
    """Weight of the pose prior and joint limits."""
    shape_sigma: float = 0.1
    """How far one window may move the hand's shape from the running estimate (prior std units)."""
    shape_rate: float = 0.5
    """How much of a contact window's shape estimate enters the running estimate (0: the shape stays the model's mean;
    for hand models without a log-scale shape parameter, see ``size_range``)."""
    size_range: float = 0.25
    """Hand size measured in contact frames: the per-frame fit is moved along its viewing rays (at most this relative
    depth change) to where its contact regions touch the object; the median over contact frames is the hand's size
    (0: the running estimate of the windows' own shapes, ``shape_rate``, instead)."""
    size_frames: int = 5
    """Contact frames measured before the hand's size is taken from them."""
    size_trust: float = 0.04
    """The hand's size is the *weighted* median of the contact frames' measures, each weighing
    ``1 / (size_trust^2 + log(scale)^2)``: the further the per-frame fit had to be moved along its rays to touch
    the object, the less its measure counts (a move of ``size_trust`` halves it; 0: the plain median)."""
    contact_shift: bool = True
    """A new contact frame starts at the depth its contact evidence found: the per-frame fit moved along its viewing
    rays (within ``contact.hold_depth_scale`` while in contact) to where its contact regions touch the object.
    Right for a fit whose error is a depth scale about the camera (the suite's oracle: on, MRPE 15.5 mm; off, 16.4);
    the real detector's fits err in shape and pose too, and the scale that makes them touch can be off (the demo
    clip's wrist error: on, median 26 mm; off, 15 mm; but on the coffee clip, off, the holding hand floats 6-17 mm
    off the mug; README "Stage 1")."""
    pushout: bool = True
    """Decided contact frames: turn the finger joints so no vertex stays inside the object (the wrist and the
    hand's position do not move; ``engine/window/pushout.py``)."""
    pushout_sigma: float = 0.03
    """How far a joint may turn (radians per axis) to take a millimetre of penetration out."""
    pushout_iterations: int = 4
    """Gauss-Newton steps of the push-out (it stops early once nothing is inside)."""
    vertices: bool = True
    """Write the hand mesh (float16) per frame."""

    def __post_init__(self) -> None:
        _check(self.size >= 3, "window.size", self.size, "must be >= 3")
        _check(1 <= self.stride <= self.size, "window.stride", self.stride, "must be in [1, window.size]")
        _check(self.iterations >= 1 and self.first_iterations >= 1, "window.iterations", self.iterations,
               "must be >= 1")
        for k in ("sigma_px", "robust_px", "sigma_contact", "sigma_penetration", "sigma_accel", "sigma_velocity",
                  "sigma_rigid", "shape_sigma", "pushout_sigma"):
            _check(getattr(self, k) > 0, f"window.{k}", getattr(self, k), "must be > 0")
        _check(0 <= self.shape_rate <= 1, "window.shape_rate", self.shape_rate, "must be in [0, 1]")
        _check(0 <= self.sigma_3d_rate <= 1, "window.sigma_3d_rate", self.sigma_3d_rate, "must be in [0, 1]")
        _check(0 <= self.size_range < 1, "window.size_range", self.size_range, "must be in [0, 1)")
        _check(self.size_frames >= 1, "window.size_frames", self.size_frames, "must be >= 1")
        _check(self.size_trust >= 0, "window.size_trust", self.size_trust, "must be >= 0")
        _check(self.pushout_iterations >= 1, "window.pushout_iterations", self.pushout_iterations, "must be >= 1")
        for k in ("contact_weight", "sdf_weight", "smooth_weight", "rigidity_weight", "prior_weight", "sigma_3d"):
            _check(getattr(self, k) >= 0, f"window.{k}", getattr(self, k), "must be >= 0")

    @property
    def lag(self) -> int:
        """Frames between a frame's arrival and its stage-1 decision, at least (the last of a stride's frames)."""
        return self.size - self.stride

    @property
    def hold(self) -> int:
        """Frames between a frame's arrival and its stage-1 decision, at most (the first of a stride's frames)."""
        return self.size - 1


@dataclass(frozen=True)
class ContactConfig:
    """Contact lifting and per-hand contact detection with hysteresis (``engine/contact``)."""

    lift_radius: float = 0.015
    """A candidate vertex is pulled to a lifted object point at most this far away, metres."""
    on_distance: float = 0.008
    """Contact is possible in a frame when the hand's contact regions come this close to the surface, metres."""
    off_distance: float = 0.015
    """... and stops being possible beyond this distance (hysteresis), metres."""
    min_overlap: int = 3
    """Candidate vertices that must project onto the object's mask in a contact frame."""
    onset_frames: int = 3
    """Consecutive contact-possible frames that start a contact (dated back to the first of them)."""
    release_frames: int = 3
    """Consecutive frames without contact that end it (dated back to the first of them)."""
    max_depth_scale: float = 0.05
    """Largest relative depth correction of the hand considered when judging a new contact (monocular ambiguity)."""
    hold_depth_scale: float = 0.1
    """The same while the hand is in contact (the window has already anchored its depth on the object)."""
    release_drift: float = 0.15
    """A held contact stops being possible in a frame whose 2D keypoints lie this far (median, in hand image sizes)
    from where the hand, held still on the object since the contact settled, projects (0 disables the cue)."""
    settle_frames: int = 8
    """Frames after an onset before the hand's hold on the object serves as the reference of ``release_drift``
    (the fingers are still closing)."""

    def __post_init__(self) -> None:
        _check(self.lift_radius > 0, "contact.lift_radius", self.lift_radius, "must be > 0")
        _check(0 < self.on_distance <= self.off_distance, "contact.on_distance", self.on_distance,
               "must be > 0 and <= contact.off_distance")
        _check(self.min_overlap >= 1, "contact.min_overlap", self.min_overlap, "must be >= 1")
        _check(self.onset_frames >= 1 and self.release_frames >= 1, "contact.onset_frames", self.onset_frames,
               "onset and release frames must be >= 1")
        _check(0 <= self.max_depth_scale < 1, "contact.max_depth_scale", self.max_depth_scale, "must be in [0, 1)")
        _check(0 <= self.hold_depth_scale < 1, "contact.hold_depth_scale", self.hold_depth_scale, "must be in [0, 1)")
        _check(self.release_drift >= 0, "contact.release_drift", self.release_drift, "must be >= 0")
        _check(self.settle_frames >= 0, "contact.settle_frames", self.settle_frames, "must be >= 0")


@dataclass(frozen=True)
class GraspConfig:
    """Stage 2: backward grasp completion on contact onset (``engine/grasp``)."""

    enabled: bool = True
    """Re-solve the approach before each contact onset (off: stage-1 results are final). On the synthetic suite
    it moves the approach 20 % closer to the truth, its MPJPE within 0.1 mm (README, "Stage 2"); approach frames stay
    provisional for up to ``buffer_s``."""
    buffer_s: float = 3.0
    """Approach buffer per hand, seconds: the longest a frame stays provisional from its arrival (the window's hold and
    ``delay_s`` included); older frames without a contact onset are finalized as they are."""
    prior: str = "minimum_jerk"
    """Human-motion prior of the approach: minimum_jerk (Flash & Hogan wrist path + aperture profile)."""
    retreat: bool = False
    """Also re-solve the retreat after a release (off by default: on the synthetic suite it made the retreat worse)."""
    keep_frames: int = -1
    """The last frames before an onset that keep stage 1's values instead of being re-solved (-1: the window's
    lag, the frames it always decided with the contact frames in view; 0: re-solve every buffered frame). The
    re-solve ends on the first kept frame, at the size the contact measured."""
    settle_s: float = 1.0
    """After an onset, the approach waits this long in contact (within the buffer's bound) before it is re-solved:
    the contact frames measure the hand's size against the object, and the approach takes the latest measure."""
    delay_s: float = 0.3
    """How long the pipeline takes, besides the window's hold, to bring a frame to stage 2 and write what is decided
    of it (queues, the re-solve, the store's flush; ~0.3 s paced on the latency clip): the buffer keeps frames this
    much less, so that ``buffer_s`` (+ 200 ms) bounds an approach frame's glass-to-final while the pipeline keeps up."""

    def __post_init__(self) -> None:
        _check(self.buffer_s > 0, "grasp.buffer_s", self.buffer_s, "must be > 0")
        _check(self.settle_s >= 0, "grasp.settle_s", self.settle_s, "must be >= 0")
        _check(self.delay_s >= 0, "grasp.delay_s", self.delay_s, "must be >= 0")
        _check(self.keep_frames >= -1, "grasp.keep_frames", self.keep_frames, "must be >= -1 (-1: the window's lag)")
        _check(self.prior in ("minimum_jerk",), "grasp.prior", self.prior, "choose minimum_jerk")


@dataclass(frozen=True)
class EngineConfig:
    queue_size: int = 4
    """Packets buffered between two stages (bounded: a slow stage applies backpressure)."""
    progress: bool = True
    """Show the live progress display (frames, fps, lag, drops, ETA)."""
    workers: bool = True
    """Run the per-frame hand fit and the window in worker processes of their own (they are
    interpreter-bound: in threads of one process they take turns instead of sharing the cores)."""
    kernel_threads: int = 1
    """numba threads of each stage (its thread, or its worker process). The stages run side by side and keep
    the cores busy, so a kernel's parallel region would wait for a core another stage holds (the window's
    CPU per frame doubled with a busy neighbour); 0 leaves numba's default (all cores)."""

    def __post_init__(self) -> None:
        _check(self.queue_size >= 1, "engine.queue_size", self.queue_size, "must be >= 1")
        _check(self.kernel_threads >= 0, "engine.kernel_threads", self.kernel_threads, "must be >= 0")


@dataclass(frozen=True)
class StoreConfig:
    chunk_frames: int = 128
    """Frames per chunk along time for per-frame arrays."""
    flush_interval_s: float = 0.1
    """Longest time a decided frame waits in memory before it is flushed to the store."""
    flush_frames: int = 32
    """Flush after this many new rows even if the interval has not passed."""
    compression_level: int = 3
    """Zstandard level for all arrays (0 disables compression)."""
    fsync: bool = False
    """fsync chunk files before advancing the watermark (survives power loss, slower)."""

    def __post_init__(self) -> None:
        _check(1 <= self.chunk_frames <= 65536, "store.chunk_frames", self.chunk_frames, "must be in [1, 65536]")
        _check(self.flush_interval_s >= 0, "store.flush_interval_s", self.flush_interval_s, "must be >= 0")
        _check(self.flush_frames >= 1, "store.flush_frames", self.flush_frames, "must be >= 1")
        _check(0 <= self.compression_level <= 22, "store.compression_level", self.compression_level,
               "must be in [0, 22]")


@dataclass(frozen=True)
class RunConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    """How frames are read."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    """Camera intrinsics."""
    hands: HandsConfig = field(default_factory=HandsConfig)
    """Hand model selection."""
    object: ObjectConfig = field(default_factory=ObjectConfig)
    """The manipulated object: mesh and pose source."""
    window: WindowConfig = field(default_factory=WindowConfig)
    """Stage 1: the sliding-window interaction optimizer."""
    contact: ContactConfig = field(default_factory=ContactConfig)
    """Contact lifting and detection."""
    grasp: GraspConfig = field(default_factory=GraspConfig)
    """Stage 2: backward grasp completion."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Threads, queues and display."""
    store: StoreConfig = field(default_factory=StoreConfig)
    """Result store layout and flushing."""

    # -- dict / TOML ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON/TOML-friendly dict; ``from_dict(to_dict())`` is equal."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return _from_dict(cls, data, "")

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(str(p), "config file not found", "check the --config path") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(str(p), f"cannot read config file: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(str(p), f"not valid TOML: {e}", "fix the syntax") from None
        return cls.from_dict(data)

    def override(self, assignments: list[str]) -> RunConfig:
        """Apply ``section.key=value`` strings (values parsed as TOML, else as text)."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"--set {item}", "expected section.key=value")
            key, raw = item.split("=", 1)
            parts = key.strip().split(".")
            try:
                value = tomllib.loads(f"v = {raw.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw.strip()
            node = data
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"--set {item}", f"unknown config section '{p}'")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"--set {item}", f"unknown config key '{key}'")
            node[parts[-1]] = value
        return RunConfig.from_dict(data)

    def replace(self, section: str, **changes: Any) -> RunConfig:
        """A copy with fields of one section changed (validated)."""
        sub = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **{section: sub})


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_dict(v) for v in obj]
    return obj


def _from_dict(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config '{prefix or 'root'}'", f"expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"config '{prefix + unknown[0]}'", "unknown key",
                          f"valid keys here: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - guarded by the checks above
        raise ConfigError(f"config '{prefix or 'root'}'", str(e)) from None


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config '{key}'", f"expected a list, got {value!r}")
        elem = args[0] if args else Any
        if len(args) > 1 and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"config '{key}'", f"expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, key) for a, v in zip(args, value))
        return tuple(_coerce(elem, v, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config '{key}'", f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config '{key}'", f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config '{key}'", f"expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config '{key}'", f"expected a string, got {value!r}")
    return value
