"""A run's per-frame observations rebuilt from its store, to replay the window offline.

The oracle hands the detector's ``HandFrame`` to the stages: ``keypoints`` = stored
x, y + 0.5 (float32), read back by ``keypoints2d()`` as x, y - 0.5 (float32);
``world`` = the stored relative 3D keypoints minus their mean (float64 arithmetic,
then float32); the per-frame fit's parameters are stored as float32 under
``hand/{side}/init/``. Rebuilt this way, one offline pass of
:class:`~inscene.engine.window.solver.HandWindow` gives exactly what the window
stage wrote (``tests/test_window_stream.py``), so the optimizer can be timed alone.
"""

from __future__ import annotations

import numpy as np

from inscene.engine.window.solver import Observation


def observations(res, side: str) -> list[Observation | None]:
    """Every row's ``Observation`` of ``side`` as the window stage built it (None: no hand)."""
    n = res.finalized_frames
    h = f"hand/{side}/"
    kp2, rel = res.array(h + "keypoints2d", n), res.array(h + "keypoints3d_rel", n)
    pose, betas, transl = (res.array(h + "init/" + k, n) for k in ("pose", "betas", "transl"))
    obj_ok, T_cam_obj = res.array("object/valid", n), res.array("object/T_cam_obj", n)
    times = res.array("frames/time", n)
    out: list[Observation | None] = []
    for i in range(n):
        x0 = np.concatenate([pose[i].ravel(), transl[i]]).astype(np.float64)
        if not np.isfinite(kp2[i]).all() or not np.isfinite(x0).all():
            out.append(None)
            continue
        uv = ((kp2[i, :, :2] + np.float32(0.5)).astype(np.float32) - np.float32(0.5)).astype(np.float64)
        r = rel[i].astype(np.float64)
        world = (r - r.mean(0)).astype(np.float32).astype(np.float64)
        out.append(Observation(i, uv, kp2[i, :, 2].astype(np.float64), world, x0, betas[i].astype(np.float64),
                               T_cam_obj[i] if obj_ok[i] else None, float(times[i])))
    return out


def replay(res, cfg, models: dict, mesh=None) -> dict[str, list]:
    """side -> the decided rows of one offline pass of both hands' ``HandWindow`` over the store's observations
    (row by row, both sides, the hand size shared as the window stage does)."""
    from inscene.engine.window.scene import ObjectScene
    from inscene.engine.window.solver import HandWindow, share_size

    sides = ("right", "left")
    windows, obs, out = {}, {}, {}
    for side in sides:
        scene = ObjectScene(mesh, models[side], cfg.contact) if mesh is not None else None
        fps = (res.attrs.get("source") or {}).get("fps")
        windows[side] = HandWindow(models[side], cfg.window, cfg.contact, res.K, scene, 1.0 / fps if fps else None)
        obs[side] = observations(res, side)
        out[side] = []
    for row in range(len(obs["right"])):
        for side in sides:
            out[side] += windows[side].push(row, obs[side][row])
        share_size(windows)
    for side in sides:
        out[side] += windows[side].flush()
    return out
