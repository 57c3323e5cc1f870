"""The object stage: the object's 6-DoF pose per frame, the metric anchor of the scene.

Two pose sources, one set of store fields (``object/valid``, ``object/T_cam_obj``,
``object/score`` and the static mesh):

- :class:`ExternalObjectPoses`: poses from another tracker (``--object-poses``:
  FoundationPose-style files, npz, BOP JSON; see :mod:`inscene.models.objects.external`).
- :class:`RegionObjectTracker`: the built-in region-based tracker (no learned
  weights; :mod:`inscene.models.objects.session`), started from a box, a mask or
  a pose (``--object-box``, ``--object-init``), with the hands as occluders when
  an upstream stage provides them (``hands2d`` keypoints or a ``hand_mask``).

:func:`object_stage` picks one from the run config (wire it in ``compose``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from inscene.models.objects import ExternalTracks, ObjectMesh

from ..config import RunConfig
from ..errors import InputError
from ..frame import Packet
from ..stage import RunContext, Stage
from ..store.schema import ArraySpec

if TYPE_CHECKING:
    from inscene.models.objects.initspec import ObjectInit
    from inscene.models.objects.session import SessionConfig

_NAN44 = np.full((4, 4), np.nan)


class _ObjectPoseStage(Stage):
    """The store fields every object pose source writes."""

    name = "object"
    produces = ("object_pose",)
    mesh: ObjectMesh

    def fields(self) -> list[ArraySpec]:
        return [
            ArraySpec("object/valid", "bool", (), ("time",), False, doc="the object's pose is known"),
            ArraySpec("object/T_cam_obj", "float64", (4, 4), ("time", "row", "col"), np.nan,
                      doc="object pose: object frame -> camera frame, metres"),
            ArraySpec("object/score", "float32", (), ("time",), np.nan, doc="tracking confidence in [0, 1]"),
        ]

    def static_fields(self) -> dict[str, np.ndarray]:
        return {"object/mesh/vertices": self.mesh.vertices.astype(np.float32),
                "object/mesh/faces": self.mesh.faces.astype(np.int32)}

    @staticmethod
    def _emit(packet: Packet, T: np.ndarray | None, score: float) -> list[Packet]:
        packet.data["object_pose"] = T
        packet.fields["object/valid"] = T is not None
        packet.fields["object/T_cam_obj"] = T if T is not None else _NAN44
        packet.fields["object/score"] = np.float32(score)
        return [packet]


class ExternalObjectPoses(_ObjectPoseStage):
    """Looks up each frame's ``T_cam_obj`` in external tracks (by source index or time)."""

    def __init__(self, mesh: ObjectMesh, tracks: ExternalTracks) -> None:
        self.mesh = mesh
        self.tracks = tracks
        self.period: float | None = None

    def setup(self, ctx: RunContext) -> None:
        fps = getattr(ctx.source_info, "fps", None)
        self.period = ctx.config.source.stride / fps if fps else None

    def process(self, packet: Packet) -> list[Packet]:
        T = self.tracks.pose_at(packet.frame.index, packet.frame.time, self.period)
        return self._emit(packet, T, 1.0 if T is not None else np.nan)


class RegionObjectTracker(_ObjectPoseStage):
    """Tracks the object in the frames with the region-based tracker (SRT3D family).

    The viewpoint model is loaded (or built once and cached, ~20 s) at construction,
    before the first frame. The first frame the stage sees (or the init's ``frame``)
    starts the track (if nothing fits the box there, the next frames try again);
    later frames are tracked, with loss detection and recovery.
    ``score`` is the contour's colour agreement; ``valid`` is False while lost.
    """

    consumes = ("frame",)
    input_queue = 64
    """The first frame searches the box for the pose (~0.35 s alone, up to ~0.8 s beside the other stages): later
    frames wait here meanwhile (their pixels: ~60 MB at 640 x 480, ~400 MB at 1080p), not in the detector
    (a live source would drop them), and the tracker catches up at ~2 ms per frame."""
    history = 1 << 30
    """On resume, replay from the first frame: the track's state is its whole past (~1 ms per frame)."""

    def __init__(self, mesh: ObjectMesh, init: ObjectInit, config: SessionConfig | None = None,
                 hand_occlusion: bool = True, hand_models: dict[str, Any] | None = None) -> None:
        from inscene.models.objects.session import SessionConfig
        from inscene.models.objects.viewpoints import viewpoint_model

        self.mesh = mesh
        self.init = init
        self.config = config or SessionConfig()
        self.hand_occlusion = hand_occlusion
        self.model = viewpoint_model(mesh.vertices, mesh.faces, self.config.subdivisions, self.config.n_points)
        self.session = None
        self.started = False
        self.states: dict[str, int] = {}
        """Frames per tracking state (``tracking``, ``lost``, ``recovered``, ...)."""
        self._models: dict[str, Any] = dict(hand_models or {}) if hand_occlusion else {}
        """The per-frame fit's hand models (side -> model), for the fitted hands' occlusion mask (none: the keypoint
        mask)."""
        self._faces = {side: np.asarray(m.faces) for side, m in self._models.items()}
        self._K = np.eye(3)

    def setup(self, ctx: RunContext) -> None:
        from inscene.models.objects.session import TrackingSession, warmup

        info = ctx.source_info
        self._K = np.asarray(ctx.K, np.float64)
        self._warm_occlusion()
        self.session = TrackingSession(self.mesh, ctx.K, self.model, self.config)
        if getattr(info, "width", None) and getattr(info, "height", None):
            self.init.check_size(int(info.width), int(info.height))
            warmup(self.mesh, ctx.K, (int(info.height), int(info.width)), self.model, self.config)

    def _fitted(self, data: dict) -> list[tuple[np.ndarray, np.ndarray]]:
        """The per-frame fit's hand meshes in this frame (``data["hands_fit"]``: side -> FitResult), camera frame."""
        from inscene.models.hands.jacobian import pose_fast

        fits = data.get("hands_fit") or {}
        hands = []
        for side, r in fits.items():
            model = None if r is None else self._hand_model(side, r)
            if model is None:
                continue
            _, verts = pose_fast(model, r.params, with_vertices=True)
            hands += [(v, self._faces[side]) for v in verts]
        return hands

    def _warm_occlusion(self) -> None:
        """Pose and rasterize a made-up hand once: numba loads those kernels here, not on the first frame."""
        import torch

        from inscene.models.hands.jacobian import pose_fast
        from inscene.models.objects.occlusion import fitted_hands_mask

        for side, m in self._models.items():
            p = m.zero_params(1)
            p.transl = torch.tensor([[0.0, 0.0, 0.5]], dtype=m.dtype)
            _, v = pose_fast(m, p, with_vertices=True)
            fitted_hands_mask([(v[0], self._faces[side])], self._K, (64, 64))

    def _hand_model(self, side: str, fit: Any) -> Any:
        """The hand model of ``fit`` (None: not loaded, or another model's parameters)."""
        m = self._models.get(side)
        if m is not None and fit.params.hand_pose.shape[-2] != m.num_pose_joints:
            return None
        return m

    def process(self, packet: Packet) -> list[Packet]:
        from inscene.models.objects.occlusion import occlusion_from_packet

        image = packet.frame.image
        occ = occlusion_from_packet(packet.data, image.shape[:2], self._fitted, self._K) if self.hand_occlusion \
            else None
        if not self.started:
            if self.init.frame is not None and packet.frame.index < self.init.frame:
                return self._emit(packet, None, np.nan)
            est = self.session.start(image, T=self.init.T_cam_obj, box=self.init.box, mask=self.init.mask,
                                     occlusion=occ)
            self.started = est.valid  # nothing fits the box: try again in the next frame
        else:
            est = self.session.step(image, occ)
        self.states[est.state] = self.states.get(est.state, 0) + 1
        return self._emit(packet, est.T_cam_obj, est.score)


def object_stage(config: RunConfig, hand_models: dict[str, Any] | None = None) -> Stage:
    """The object stage the run config asks for: external poses, or the region tracker from a box / init file.

    Reads ``config.object``: ``mesh``, ``units``, ``poses``, ``obj_id`` and (when present) ``box``
    (``"x,y,w,h"`` or 4 numbers), ``init`` (a JSON file, :mod:`inscene.models.objects.initspec`) and
    ``hand_occlusion`` (bool, default True). ``hand_models``: the per-frame fit's models (shared with the other
    stages), for the fitted hands' occlusion mask; loaded here when the hands run and none are given.
    """
    from inscene.models.objects import load_external_tracks, load_object_mesh
    from inscene.models.objects.initspec import ObjectInit, load_init, parse_box

    oc = config.object
    mesh = load_object_mesh(oc.mesh, oc.units)
    box, init_file = getattr(oc, "box", None), getattr(oc, "init", None)
    given = [n for n, v in (("--object-poses", oc.poses), ("--object-box", box), ("--object-init", init_file))
             if v is not None]
    if len(given) > 1:
        raise InputError(f"--object {oc.mesh}", f"{' and '.join(given)} both say where the object is",
                         "give only one of them")
    if oc.poses is not None:
        return ExternalObjectPoses(mesh, load_external_tracks(oc.poses, oc.obj_id))
    if box is not None:
        text = box if isinstance(box, str) else ",".join(str(v) for v in box)
        init = ObjectInit(box=parse_box(text), source=f"--object-box {text}")
    elif init_file is not None:
        init = load_init(init_file)
    else:
        raise InputError(f"--object {oc.mesh}", "needs to know where the object is in the first frame",
                         "pass --object-box x,y,w,h, --object-init FILE.json or --object-poses FILE")
    occlusion = bool(getattr(oc, "hand_occlusion", True))
    if occlusion and hand_models is None and config.hands.enabled:
        from inscene.models.hands import load_hand_models

        hand_models = load_hand_models(config.hands.model, config.hands.mano_dir)
    return RegionObjectTracker(mesh, init, hand_occlusion=occlusion, hand_models=hand_models)
