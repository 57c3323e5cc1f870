"""One synthetic scene through the engine with oracle perception, scored against its ground truth.

:func:`evaluate` ``(preset, seed, method)``: the scene is generated once into
``workdir/scenes/`` (reused afterwards), the oracle (noise level ``oracle_level``,
seeded with the scene's seed) stands in for the hand detector and the object
tracker, and the engine runs ``OracleHandStage -> HandFitStage -> object poses
(the oracle's, noisy) -> WindowStage`` (the window unless the method disables it)
into ``workdir/runs/``. The method's result and its per-frame initialization
(``hand/{side}/init/...`` when the window ran, else the per-frame fit itself) are
scored on the same frames (:mod:`.metrics`): ground-truth hand valid and visible,
both estimates valid.

Geometry: hand vertices come from each estimate's model parameters (pose, betas,
transl) through the hand model the ground truth was made with, mapped into the
object frame with the *estimated* object pose of the run (the pose the method saw;
its own consistency), and looked up in the object's SDF grid. Contact labels: the
window's ``hand/{side}/in_contact``; for an estimate without labels (the per-frame
fit) the ground truth's own rule -- some vertex within the scene's contact
tolerance (2 mm) of the object's surface.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M

SIDES = ("right", "left")
METHODS: dict[str, tuple[str, ...]] = {
    "perframe": ("window.enabled=false",),
    "window": ("grasp.enabled=false",),
    "no_contact": ("window.contact_weight=0", "grasp.enabled=false"),
    "no_sdf": ("window.sdf_weight=0", "grasp.enabled=false"),
    "no_smooth": ("window.smooth_weight=0", "grasp.enabled=false"),
    "grasp": ("grasp.enabled=true",),
}
"""Method name -> config overrides (``section.key=value``)."""
DEFAULT_WORKDIR = Path("out/bench_accuracy")
VOLUME_SPACING = 0.002
"""Lattice step of the penetration volume, metres."""


# ---------------------------------------------------------------- scenes

def scene_dir(preset: str, seed: int, frames: int, workdir: str | Path) -> Path:
    """The scene's folder in ``workdir`` (generated on first use, and again when another generator version made
    it; ``scene.json`` marks a finished scene)."""
    from inscene.bench.synth import generate
    from inscene.bench.synth import preset as preset_config
    from inscene.bench.synth.generate import is_current

    name = f"{preset}-s{seed}" + (f"-n{frames}" if frames else "")
    out = Path(workdir) / "scenes" / name
    if not is_current(out) or not (out / "object.obj").exists():
        cfg = preset_config(preset, n_frames=frames) if frames else preset_config(preset)
        generate(cfg, seed, out, overwrite=True)
    return out


@dataclass
class Truth:
    """What the scoring reads from a ground-truth store."""

    fps: float
    n: int
    hands: dict[str, dict[str, np.ndarray]]
    """side -> valid, visible (T,), joints (T, 21, 3), in_contact (T,)."""
    hand_model: str
    contact_tol: float
    object_vertices: np.ndarray
    object_faces: np.ndarray

    @classmethod
    def load(cls, path: Path) -> Truth:
        from inscene.engine import open_result

        r = open_result(path)
        hands = {}
        for side in SIDES:
            if f"hand/{side}/joints" not in r.fields:
                continue
            hands[side] = {"valid": r.array(f"hand/{side}/valid"),
                           "visible": r.array(f"gt/hand/{side}/visible_fraction").astype(np.float64),
                           "joints": r.array(f"hand/{side}/joints").astype(np.float64),
                           "in_contact": r.array(f"hand/{side}/in_contact")}
        synth = r.attrs["synth"]
        return cls(float(r.attrs["source"]["fps"]), r.finalized_frames, hands, r.attrs["hand_model"]["kind"],
                   float(synth["contact_tolerance_m"]), r.array("object/mesh/vertices").astype(np.float64),
                   r.array("object/mesh/faces").astype(np.int64))


# ---------------------------------------------------------------- engine run

def run_config(scene: Path, method: str, overrides: tuple[str, ...] | list[str] = ()):
    """The run config of ``method`` on ``scene``: its intrinsics, the object mesh and the oracle's poses."""
    from inscene.engine.config import RunConfig

    if method not in METHODS:
        raise ValueError(f"method '{method}': use one of {', '.join(METHODS)}")
    K = np.asarray(json.loads((scene / "intrinsics.json").read_text())["K"], dtype=float)
    cfg = RunConfig().replace("camera", intrinsics=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    cfg = cfg.replace("object", mesh=str(scene / "object.obj"), units="m", poses=str(scene / "oracle_poses.npz"))
    cfg = cfg.replace("engine", progress=False)
    return cfg.override([*METHODS[method], *overrides])


def oracle_stages(oracle):
    """A stage factory: the oracle for the detector, the per-frame fit, the object poses, the window if enabled."""
    from inscene.bench.synth.oracle_stage import OracleHandStage
    from inscene.engine.stages.hands import HandFitStage
    from inscene.engine.app import refinement_stages
    from inscene.engine.stages.objects import object_stage

    def factory(cfg, ctx):
        fit = HandFitStage(cfg, prefix="init/" if cfg.window.enabled else "")
        return [OracleHandStage(oracle), fit, object_stage(cfg), *refinement_stages(cfg)]

    return factory


def run_method(scene: Path, method: str, overrides=(), oracle_level: str = "realistic", seed: int = 0,
               store: Path | None = None, end: int | None = None) -> tuple[Path, float, Any]:
    """Run the engine on the scene's video for ``method``; returns (store, wall seconds, config)."""
    from inscene.bench.synth import Oracle, oracle_config
    from inscene.bench.synth.oracle_stage import write_object_poses
    from inscene.engine.app import JobRequest, run_job

    oracle = Oracle.from_store(scene / "gt.zarr", oracle_config(oracle_level), seed=seed, models=_models(scene))
    write_object_poses(oracle, scene / "oracle_poses.npz")
    cfg = run_config(scene, method, overrides)
    if end:
        cfg = cfg.replace("source", end=int(end))
    store = store or scene.parent.parent / "runs" / scene.name / f"{method}.zarr"
    store.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out = run_job(JobRequest(str(scene / "video.mp4"), store, cfg, mode="overwrite",
                             stage_factory=oracle_stages(oracle)), progress=False)
    if out.error is not None:
        raise out.error
    return store, time.perf_counter() - t0, cfg


_MODELS: dict[str, dict] = {}


def _models(scene: Path) -> dict:
    """The hand models of the scene's ground truth (loaded once per process)."""
    from inscene.engine import open_result
    from inscene.models.hands import load_hand_model

    kind = open_result(scene / "gt.zarr").attrs["hand_model"]["kind"]
    if kind not in _MODELS:
        _MODELS[kind] = {s: load_hand_model(kind, side=s) for s in SIDES}
    return _MODELS[kind]


# ---------------------------------------------------------------- scoring

def estimate(res, prefix: str) -> dict[str, np.ndarray] | None:
    """An estimate's arrays under ``prefix`` (``hand/right/`` or ``hand/right/init/``), or None if absent."""
    if f"{prefix}joints" not in res.fields:
        return None
    out = {k: res.array(prefix + k) for k in ("valid", "joints", "pose", "betas", "transl") if prefix + k in res.fields}
    if f"{prefix}in_contact" in res.fields:
        out["in_contact"] = res.array(prefix + "in_contact")
    if f"{prefix}vertices" in res.fields:
        out["vertices"] = res.array(prefix + "vertices")
    return out


def vertices(model, est: dict[str, np.ndarray], mask: np.ndarray, batch: int = 64) -> np.ndarray:
    """(T, V, 3) camera-frame hand vertices of the ``mask`` frames (NaN elsewhere), from the model parameters
    (else the stored float16 vertices)."""
    import torch

    T = len(mask)
    if not all(k in est for k in ("pose", "betas", "transl")):
        v = est["vertices"].astype(np.float64)
        return np.where(mask[:, None, None], v, np.nan)
    out = np.full((T, int(model.v_template.shape[0]), 3), np.nan)
    idx = np.flatnonzero(mask)
    for s in range(0, len(idx), batch):
        i = idx[s:s + batch]
        t = {k: torch.as_tensor(est[k][i], dtype=model.dtype) for k in ("pose", "betas", "transl")}
        with torch.no_grad():
            o = model(t["pose"][:, 0], t["pose"][:, 1:], t["betas"], t["transl"], with_vertices=True)
        out[i] = o.vertices.double().numpy()
    return out


def score_estimate(gt: dict[str, np.ndarray], est: dict[str, np.ndarray], mask: np.ndarray, in_view: np.ndarray,
                   model, grid, T_cam_obj: np.ndarray, fps: float, contact_tol: float) -> dict[str, Any]:
    """Every metric of one estimate of one hand on the ``mask`` frames (see the module docstring)."""
    faces = model.faces.numpy()
    obj_ok = np.isfinite(T_cam_obj).all(axis=(1, 2))
    geo = mask & obj_ok
    verts = vertices(model, est, geo)
    T_safe = np.where(obj_ok[:, None, None], T_cam_obj, np.eye(4))
    v_obj = M.to_object_frame(verts, T_safe)
    sdf = M.signed_distances(grid, v_obj)
    depth = M.penetration_depth(sdf)
    volume = np.where(geo, 0.0, np.nan)
    for i in np.flatnonzero(depth > 0):  # no vertex inside: no volume worth counting (see penetration_volume)
        volume[i] = M.penetration_volume(v_obj[i], faces, grid, VOLUME_SPACING)
    if "in_contact" in est:
        contact, source = est["in_contact"].astype(bool), "estimate"
    else:
        contact, source = np.where(np.isfinite(sdf), sdf, np.inf).min(axis=1) <= contact_tol, "geometric"
    g_contact = gt["in_contact"].astype(bool)
    joints = est["joints"].astype(np.float64)
    wrist = np.full(len(mask), np.nan)
    wrist[mask] = M.mrpe(joints[mask], gt["joints"][mask])
    touched = np.cumsum(g_contact) > 0  # at or after the ground truth's first contact
    return {
        "frames": int(mask.sum()), "in_view": int(in_view.sum()),
        "coverage": float(mask.sum() / max(in_view.sum(), 1)),
        "mrpe_mm": M.summary_stats(M.mrpe(joints[mask], gt["joints"][mask])),
        "mrpe_phase_mm": {"before_contact": M.summary_stats(wrist[mask & ~touched]),
                          "contact": M.summary_stats(wrist[mask & g_contact]),
                          "after_contact": M.summary_stats(wrist[mask & touched & ~g_contact])},
        "mpjpe_mm": M.summary_stats(M.mpjpe_rel(joints[mask], gt["joints"][mask])),
        "penetration_mm": {"all": M.summary_stats(depth[mask]), "contact": M.summary_stats(depth[mask & g_contact])},
        "penetration_volume_cm3": {"all": M.summary_stats(volume[mask], 1e6),
                                   "contact": M.summary_stats(volume[mask & g_contact], 1e6)},
        "contact": {**M.contact_prf(contact[mask], g_contact[mask]), "source": source},
        "jitter": M.jitter(joints, gt["joints"], mask, fps).as_dict(),
    }


def pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool :func:`score_estimate` results (hands, seeds): count-weighted means, summed contact counts."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    frames, in_view = sum(p["frames"] for p in parts), sum(p["in_view"] for p in parts)
    c = {k: sum(p["contact"][k] for p in parts) for k in ("tp", "fp", "fn")}
    jn = [p["jitter"] for p in parts if p["jitter"]["n"] > 0]
    n = sum(j["n"] for j in jn)
    j_est = sum(j["est_m_per_frame2"] * j["n"] for j in jn) / n if n else float("nan")
    j_gt = sum(j["gt_m_per_frame2"] * j["n"] for j in jn) / n if n else float("nan")
    return {
        "frames": frames, "in_view": in_view, "coverage": frames / max(in_view, 1),
        "mrpe_mm": M.pool_means([p["mrpe_mm"] for p in parts]),
        "mrpe_phase_mm": {k: M.pool_means([p["mrpe_phase_mm"][k] for p in parts])
                          for k in ("before_contact", "contact", "after_contact")},
        "mpjpe_mm": M.pool_means([p["mpjpe_mm"] for p in parts]),
        "penetration_mm": {k: M.pool_means([p["penetration_mm"][k] for p in parts]) for k in ("all", "contact")},
        "penetration_volume_cm3": {k: M.pool_means([p["penetration_volume_cm3"][k] for p in parts])
                                   for k in ("all", "contact")},
        "contact": M.prf(**c),
        "jitter": {"est_m_per_frame2": j_est, "gt_m_per_frame2": j_gt, "ratio": j_est / j_gt if n else float("nan"),
                   "n": n},
    }


def amortized_ms(ms: np.ndarray, hands: np.ndarray, block: int) -> dict[str, float] | None:
    """Stage time per frame per hand: the clip's total over its hand-frames, and over blocks of ``block`` frames
    (median, p90): a window solves every ``block`` frames, so single frames are not comparable."""
    ms, hands = np.nan_to_num(np.asarray(ms, np.float64)), np.asarray(hands, np.float64)
    if hands.sum() == 0:
        return None
    n = len(ms) // block * block or len(ms)
    b_ms = ms[:n].reshape(-1, min(block, n)).sum(1)
    b_h = hands[:n].reshape(-1, min(block, n)).sum(1)
    per = b_ms[b_h > 0] / b_h[b_h > 0]
    return {"mean": float(ms.sum() / hands.sum()), "median": float(np.median(per)),
            "p90": float(np.percentile(per, 90)), "blocks": len(per), "block_frames": int(min(block, n))}


_GRIDS: dict[str, Any] = {}


def evaluate(preset: str, seed: int, method: str, overrides: tuple[str, ...] | list[str] = (), frames: int = 0,
             workdir: str | Path = DEFAULT_WORKDIR, oracle_level: str = "realistic") -> dict[str, Any]:
    """Run ``method`` on the scene (``preset``, ``seed``) with oracle perception and score it and its initialization.

    Returns a JSON-friendly dict: ``preset``, ``seed``, ``method``, ``frames``, ``run_seconds``,
    ``init_source``, ``sides`` (side -> {"init", "method", "truth"} metrics; "truth": the ground truth
    itself, scored the same way -- its penetration is that of the exact hand under the estimated object
    poses), ``pooled`` ({"init", "method", "truth"}, both hands pooled), ``timing`` (``window`` and ``hands_fit`` ms per frame per hand).
    """
    from inscene.engine import open_result
    from inscene.kernels import sdf_grid

    scene = scene_dir(preset, seed, frames, workdir)
    store, seconds, cfg = run_method(scene, method, overrides, oracle_level, seed)
    truth = Truth.load(scene / "gt.zarr")
    gt_res = open_result(scene / "gt.zarr")
    res = open_result(store)
    n = min(truth.n, res.finalized_frames)
    key = str(scene)
    if key not in _GRIDS:
        _GRIDS[key] = sdf_grid((truth.object_vertices, truth.object_faces))
    grid, models = _GRIDS[key], _models(scene)
    T_obj = res.array("object/T_cam_obj", n)
    T_obj = np.where(res.array("object/valid", n)[:, None, None], T_obj, np.nan)
    sides, init_source, hands = {}, "the method's own per-frame fit", np.zeros(n)
    for side, g in truth.hands.items():
        g = {k: v[:n] for k, v in g.items()}
        est = estimate(res, f"hand/{side}/")
        init = estimate(res, f"hand/{side}/init/")
        if init is None:
            init = est
        else:
            init_source = "hand/{side}/init/ of the same run"
        if est is None:
            continue
        hands += est["valid"].astype(bool)
        mask, in_view = M.scored_frames(g["valid"], g["visible"], est["valid"], init["valid"])
        args = (mask, in_view, models[side], grid, T_obj, truth.fps, truth.contact_tol)
        exact = {k: v[:n] for k, v in estimate(gt_res, f"hand/{side}/").items()}
        sides[side] = {"init": score_estimate(g, init, *args), "method": score_estimate(g, est, *args),
                       "truth": score_estimate(g, exact, *args)}
    timing = {}
    tm = res.timing()
    for stage, block in (("window", cfg.window.stride), ("hands_fit", 1)):
        if stage in tm:
            timing[stage] = amortized_ms(tm[stage][:n], hands, block)
    return {"preset": preset, "seed": seed, "method": method, "overrides": list(METHODS[method]) + list(overrides),
            "frames": n, "oracle": oracle_level, "run_seconds": round(seconds, 2), "init_source": init_source,
            "store": str(store), "sides": sides,
            "pooled": {k: pool([s[k] for s in sides.values()]) for k in ("init", "method", "truth")},
            "timing": timing}
