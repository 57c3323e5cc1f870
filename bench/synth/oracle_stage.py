"""The oracle's outputs in the engine's forms: a detector ``HandFrame``, a stage, a store, an object-pose file.

:class:`OracleHandStage` replaces the hand detector stage (``hands2d``) in an
engine chain: it answers each frame of a synthetic video with the oracle's
noisy keypoints as the detector's ``HandFrame``, so the stages after it (the
per-frame fit, the window) run unchanged while perception is under control.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inscene.engine.config import StoreConfig
from inscene.engine.frame import Packet, Status
from inscene.engine.stage import Stage
from inscene.engine.store.schema import ArraySpec
from inscene.engine.store.writer import StoreWriter

from .oracle import SIDES, Oracle


def hand_frame(oracle: Oracle, i: int):
    """The oracle's hands of frame ``i`` as the detector's ``HandFrame`` (one hand per reported side)."""
    from inscene.models.detector.rects import HandRect
    from inscene.models.detector.tracker import Hand, HandFrame

    hands = []
    fx = oracle.truth.K[0, 0]
    for k, side in enumerate(SIDES):
        f = oracle.hands[side]
        kp = f["keypoints2d"][i]
        if not np.isfinite(kp).all():
            continue
        rel = f["keypoints3d_rel"][i].astype(np.float64)
        depth = float(np.nanmedian(oracle.truth.hands.get(side, next(iter(oracle.truth.hands.values())))
                                   ["joints"][i, :, 2]))
        z_px = rel[:, 2] * fx / max(depth, 1e-3)
        lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
        rect = HandRect(float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), float(1.5 * (hi - lo).max()), 0.0)
        # Hand.keypoints is in the detector's continuous pixel coordinates (centres at +0.5);
        # the oracle's keypoints, like the store, have pixel centres at integer coordinates.
        hands.append(Hand(track_id=k, side=side, p_right=1.0 if side == "right" else 0.0,
                          keypoints=np.concatenate([kp[:, :2] + 0.5, z_px[:, None]], 1).astype(np.float32),
                          confidence=kp[:, 2].astype(np.float32), world=(rel - rel.mean(0)).astype(np.float32),
                          presence=float(f["presence"][i]), rect=rect, from_palm=False))
    return HandFrame(hands=hands, palm_ran=False)


class OracleHandStage(Stage):
    """Stands in for the hand detector (``hands2d``): the oracle's keypoints for each source frame."""

    name = "hands2d"
    consumes = ("frame",)
    produces = ("hands2d",)

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle

    def fields(self) -> list[ArraySpec]:
        out = []
        for s in SIDES:
            out += [ArraySpec(f"hand/{s}/keypoints2d", "float32", (21, 3), ("time", "joint", "uv_conf"), np.nan,
                              doc=f"{s} hand: oracle keypoints: x, y pixels, confidence"),
                    ArraySpec(f"hand/{s}/keypoints3d_rel", "float32", (21, 3), ("time", "joint", "xyz"), np.nan,
                              doc=f"{s} hand: oracle relative 3D keypoints, metres, camera axes"),
                    ArraySpec(f"hand/{s}/presence", "float32", (), ("time",), np.nan,
                              doc=f"{s} hand: oracle presence (NaN: no hand)")]
        return out

    def process(self, packet: Packet) -> list[Packet]:
        i = min(packet.frame.index, self.oracle.n_frames - 1)
        packet.data["hands2d"] = hand_frame(self.oracle, i)
        for s in SIDES:
            f = self.oracle.hands[s]
            packet.fields[f"hand/{s}/keypoints2d"] = f["keypoints2d"][i]
            packet.fields[f"hand/{s}/keypoints3d_rel"] = f["keypoints3d_rel"][i]
            packet.fields[f"hand/{s}/presence"] = f["presence"][i]
        return [packet]


def oracle_specs(oracle: Oracle) -> list[ArraySpec]:
    """Per-frame arrays of an oracle store (the engine's perception fields plus ``oracle/`` flags)."""
    out = []
    for side, f in oracle.hands.items():
        for k, v in f.items():
            dims = {"keypoints2d": ("joint", "uv_conf"), "keypoints3d_rel": ("joint", "xyz"),
                    "joints": ("joint", "xyz"), "pose": ("pose_joint", "axis_angle"), "betas": ("beta",),
                    "transl": ("xyz",)}.get(k, ())
            fill = False if v.dtype == bool else np.nan
            out.append(ArraySpec(f"hand/{side}/{k}", v.dtype.name, v.shape[1:], ("time", *dims), fill))
    for side in oracle.flags:
        out += [ArraySpec(f"oracle/{side}/missed", "bool", (), ("time",), False, doc="detection dropped"),
                ArraySpec(f"oracle/{side}/swapped", "bool", (), ("time",), False, doc="reported as the other side"),
                ArraySpec(f"oracle/{side}/depth_scale", "float32", (), ("time",), np.nan,
                          doc="multiplicative depth error of the 3D estimate")]
    out += [ArraySpec("object/valid", "bool", (), ("time",), False),
            ArraySpec("object/T_cam_obj", "float64", (4, 4), ("time", "row", "col"), np.nan),
            ArraySpec("object/score", "float32", (), ("time",), np.nan)]
    return out


def write_oracle_store(oracle: Oracle, path: str | Path, source: str = "", overwrite: bool = False) -> Path:
    """Write every frame of the oracle into a store at ``path`` (the engine's schema); returns the path."""
    import dataclasses

    attrs = {"source": {"uri": source, "kind": "oracle", "fps": oracle.truth.fps, "size": list(oracle.truth.size),
                        "live": False, "n_frames": oracle.n_frames},
             "world_frame": "first camera", "stages": ["oracle"],
             "oracle": {"seed": oracle.seed, "config": dataclasses.asdict(oracle.config)}}
    w = StoreWriter.create(path, oracle_specs(oracle), attrs, StoreConfig(), oracle.truth.K, overwrite=overwrite)
    for i in range(oracle.n_frames):
        row = {k: v for k, v in oracle.frame_fields(i).items() if not k.split("/")[-1].startswith("_")}
        row["frames/time"] = i / oracle.truth.fps
        row["frames/source_index"] = i
        for side, fl in oracle.flags.items():
            row.update({f"oracle/{side}/{k}": v[i] for k, v in fl.items()})
        w.put(i, row, Status.FINAL)
        w.maybe_flush()
    w.close("complete")
    return Path(path)


def write_object_poses(oracle: Oracle, path: str | Path) -> Path:
    """The oracle's object poses as an npz (``T_cam_obj`` (N, 4, 4), ``frame`` (N,)) for ``--object-poses``."""
    ok = oracle.object["valid"]
    np.savez(path, T_cam_obj=oracle.object["T_cam_obj"][ok], frame=np.flatnonzero(ok))
    return Path(path)
