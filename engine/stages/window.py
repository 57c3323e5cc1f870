"""The window stage (stage 1): per-frame hand fits -> object-anchored, smooth, contact-aware hand motion.

Consumes the per-frame fit (``hands_fit``, with the detector's ``hands2d``) and,
when an object stage runs, ``object_pose``. Holds packets while their rows are
in the window (:class:`~inscene.engine.window.solver.HandWindow`, one per hand
side, both on the same row schedule) and lets them go, decided, ``W - stride``
to ``W - 1`` frames later. Writes per side the refined ``valid``, ``pose``,
``betas``, ``transl``, ``joints``, ``in_contact``, ``penetration``, the mesh
(``vertices``, float16, optional) and ``contact/{side}/points`` (object frame,
NaN-padded); the per-frame fit keeps its values under ``hand/{side}/init/``.
Downstream, ``packet.data["window"]`` holds side -> ``WindowHand`` (or None).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..config import RunConfig
from ..frame import Packet
from ..stage import RunContext, Stage
from ..store.schema import ArraySpec
from ..window.solver import Decided, HandWindow, Observation, share_size

SIDES = ("right", "left")
MAX_CONTACT_POINTS = 64
"""Contact points stored per hand and frame (the nearest to the surface first)."""


def _spec(path: str, dtype: str, shape: tuple[int, ...], dims: tuple[str, ...], doc: str,
          fill: float | bool = np.nan) -> ArraySpec:
    return ArraySpec(path, dtype, shape, ("time", *dims), fill, doc=doc)


class WindowStage(Stage):
    """Stage 1: the sliding-window interaction optimizer over both hands."""

    name = "window"
    consumes = ("hands_fit",)
    produces = ("window",)
    needs_image = False

    def __init__(self, run: RunConfig, models: dict | None = None) -> None:
        from inscene.models.hands import load_hand_models

        self.run = run
        self.config = run.window
        self.models = models or load_hand_models(run.hands.model, run.hands.mano_dir)
        m = self.models["right"]
        self.num_pose, self.num_betas, self.num_vertices = 1 + m.num_pose_joints, m.num_betas, m.num_vertices
        self.mesh = None
        if run.object.mesh is not None:
            from inscene.models.objects import load_object_mesh

            self.mesh = load_object_mesh(run.object.mesh, run.object.units)
        self.history = self.config.size + 2
        self.input_queue = 3 * self.config.stride  # a solve (one frame in stride) takes ~10 frames' time
        self.windows: dict[str, HandWindow] = {}
        self.held: deque[Packet] = deque()

    # -------------------------------------------------------------- schema
    def fields(self) -> list[ArraySpec]:
        m = self.models["right"]
        out = []
        for s in SIDES:
            h = f"hand/{s}/"
            out += [
                _spec(h + "valid", "bool", (), (), f"{s} hand: tracked and refined by the window", False),
                _spec(h + "pose", "float32", (self.num_pose, 3), ("pose_joint", "axis_angle"),
                      f"{s} hand: {m.name} pose, axis-angle: global rotation (camera frame) then the joints"),
                _spec(h + "betas", "float32", (self.num_betas,), ("beta",),
                      f"{s} hand: shape (one per hand over time: the estimate when the frame was decided)"),
                _spec(h + "transl", "float32", (3,), ("xyz",), f"{s} hand: translation, camera frame, metres"),
                _spec(h + "joints", "float32", (21, 3), ("joint", "xyz"), f"{s} hand: 21 keypoints, camera frame, m"),
                _spec(h + "in_contact", "bool", (), (), f"{s} hand: touches the object (contact detection)", False),
                _spec(h + "rejected", "bool", (), (),
                      f"{s} hand: a detection was dropped as another hand (identity gate: it jumped)", False),
                _spec(h + "penetration", "float32", (), (),
                      f"{s} hand: deepest hand vertex inside the object, m (0: none; NaN: no object pose)"),
                _spec(f"contact/{s}/points", "float32", (MAX_CONTACT_POINTS, 3), ("contact", "xyz"),
                      f"{s} hand: contact points on the object, object frame, NaN-padded"),
            ]
            if self.config.vertices:
                out.append(_spec(h + "vertices", "float16", (self.num_vertices, 3), ("vertex", "xyz"),
                                 f"{s} hand: mesh, camera frame, metres", np.nan))
        return out

    def static_fields(self) -> dict[str, np.ndarray]:
        return {f"hand/{s}/faces": self.models[s].faces.numpy().astype(np.int32) for s in SIDES}

    # ------------------------------------------------------------- running
    def setup(self, ctx: RunContext) -> None:
        import torch
        from inscene.models.hands.jacobian import warm_kernels

        from ..window.scene import ObjectScene

        torch.set_num_threads(1)  # small batched products: one thread each, stages run side by side

        sdf = None
        for s in SIDES:
            warm_kernels(self.models[s])
            scene = None
            if self.mesh is not None:
                scene = ObjectScene(self.mesh, self.models[s], self.run.contact, sdf)
                scene.warmup(self.models[s], ctx.K)
                sdf = scene.sdf
            fps = getattr(ctx.source_info, "fps", None)
            self.windows[s] = HandWindow(self.models[s], self.config, self.run.contact, ctx.K, scene,
                                         1.0 / fps if fps else None)

    def process(self, packet: Packet) -> list[Packet]:
        self.held.append(packet)
        decided = {s: self.windows[s].push(packet.row, self._observation(packet, s)) for s in SIDES}
        share_size(self.windows)
        return self._release(decided)

    def flush(self) -> list[Packet]:
        return self._release({s: self.windows[s].flush() for s in SIDES})

    def _release(self, decided: dict[str, list[Decided]]) -> list[Packet]:
        out = []
        for k, d_right in enumerate(decided["right"]):
            packet = self.held.popleft()
            assert packet.row == d_right.row == decided["left"][k].row, "window sides out of step"
            packet.data["window"] = {}
            for s, d in (("right", d_right), ("left", decided["left"][k])):
                self._write(packet, s, d)
            out.append(packet)
        return out

    @staticmethod
    def _observation(packet: Packet, side: str) -> Observation | None:
        fits = packet.data.get("hands_fit") or {}
        fit = fits.get(side)
        frame = packet.data.get("hands2d")
        hand = frame.by_side().get(side) if frame is not None else None
        if fit is None or hand is None:
            return None
        p = fit.params
        x0 = np.concatenate([p.global_orient[0].numpy(), p.hand_pose[0].numpy().ravel(),
                             p.transl[0].numpy()]).astype(np.float64)
        if not np.isfinite(x0).all():
            return None
        T = packet.data.get("object_pose")
        world = np.asarray(hand.world, np.float64) if hand.world is not None else None
        return Observation(packet.row, np.asarray(hand.keypoints2d()[:, :2], np.float64),
                           np.asarray(hand.confidence, np.float64), world, x0,
                           p.betas[0].numpy().astype(np.float64), None if T is None else np.asarray(T, np.float64),
                           float(packet.frame.time))

    def _write(self, packet: Packet, side: str, d: Decided) -> None:
        h = f"hand/{side}/"
        f = packet.fields
        hand = d.hand
        packet.data["window"][side] = hand
        f[h + "rejected"] = np.bool_(d.rejected)
        if hand is None:
            f[h + "valid"] = np.bool_(False)
            f[h + "pose"] = np.full((self.num_pose, 3), np.nan, np.float32)
            f[h + "betas"] = np.full(self.num_betas, np.nan, np.float32)
            f[h + "transl"] = np.full(3, np.nan, np.float32)
            f[h + "joints"] = np.full((21, 3), np.nan, np.float32)
            f[h + "in_contact"] = np.bool_(False)
            f[h + "penetration"] = np.float32(np.nan)
            f[f"contact/{side}/points"] = np.full((MAX_CONTACT_POINTS, 3), np.nan, np.float32)
            if self.config.vertices:
                f[h + "vertices"] = np.full((self.num_vertices, 3), np.nan, np.float16)
            return
        f[h + "valid"] = np.bool_(True)
        f[h + "pose"] = hand.pose.astype(np.float32)
        f[h + "betas"] = hand.betas.astype(np.float32)
        f[h + "transl"] = hand.transl.astype(np.float32)
        f[h + "joints"] = hand.keypoints.astype(np.float32)
        f[h + "in_contact"] = np.bool_(hand.in_contact)
        f[h + "penetration"] = np.float32(d.penetration)
        pts = np.full((MAX_CONTACT_POINTS, 3), np.nan, np.float32)
        if hand.contact_points is not None and len(hand.contact_points):
            c = hand.contact_points[:MAX_CONTACT_POINTS]
            pts[:len(c)] = c
        f[f"contact/{side}/points"] = pts
        if self.config.vertices and d.vertices is not None:
            f[h + "vertices"] = d.vertices.astype(np.float16)
