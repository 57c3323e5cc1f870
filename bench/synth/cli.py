"""``inscene synth``: render a synthetic hand-object scene with its ground truth.

::

    inscene synth --preset tiny --seed 0 -o out/tiny0          # gt.zarr, video.mp4, object.obj, ...
    inscene synth --preset mug_static --seed 3 -o out/m3 --oracle realistic
    inscene synth --list                                       # the presets
"""

from __future__ import annotations

import argparse
import sys

from inscene.engine.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", help="scene preset (see --list; default: tiny)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: one seed, one scene (default 0)")
    parser.add_argument("-o", "--output", help="output folder (gt.zarr, video.mp4, object.obj, intrinsics.json)")
    parser.add_argument("--frames", type=int, help="number of frames (overrides the preset)")
    parser.add_argument("--size", help="image size WIDTHxHEIGHT (overrides the preset)")
    parser.add_argument("--rgb", action="store_true", help="also store the exact RGB frames in gt.zarr (gt/rgb)")
    parser.add_argument("--no-vertices", action="store_true", help="do not store the hands' mesh vertices per frame")
    parser.add_argument("--no-video", action="store_true", help="do not write video.mp4")
    parser.add_argument("--oracle", metavar="LEVEL",
                        help="also write oracle perception (clean, realistic, hard): oracle.zarr and "
                             "oracle_object_poses.npz")
    parser.add_argument("--oracle-seed", type=int, help="seed of the oracle's noise (default: --seed)")
    parser.add_argument("--overwrite", action="store_true", help="replace a scene already in the output folder")
    parser.add_argument("--list", action="store_true", help="list the presets and exit")


def _overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if args.frames is not None:
        out["n_frames"] = args.frames
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise InputError(f"--size {args.size}", "not WIDTHxHEIGHT", "e.g. --size 640x480") from None
        if w % 2 or h % 2:
            raise InputError(f"--size {args.size}", "width and height must be even (H.264)", "e.g. --size 640x480")
        out["size"] = (w, h)
    if args.rgb:
        out["store_rgb"] = True
    if args.no_vertices:
        out["store_vertices"] = False
    return out


def main(args: argparse.Namespace) -> int:
    from .config import PRESETS, preset

    if args.list:
        for name, c in PRESETS.items():
            w, h = c.size
            print(f"{name:20s} {w}x{h} {c.n_frames:4d} frames  {c.camera:6s} camera  {c.object:24s} {c.scenario}")
        return 0
    if not args.output:
        raise InputError("inscene synth", "no output folder", "pass -o DIR")
    cfg = preset(args.preset, **_overrides(args))
    level = None
    if args.oracle:
        from .oracle import oracle_config

        level = oracle_config(args.oracle)
    from .generate import generate

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rrendering {done}/{total}")
            if done == total:
                sys.stderr.write("\n")

    res = generate(cfg, args.seed, args.output, overwrite=args.overwrite, video=not args.no_video, progress=progress)
    s = res.summary()
    print(f"scene      {cfg.name} seed {args.seed}: {s['frames']} frames {cfg.size[0]}x{cfg.size[1]}, "
          f"{cfg.camera} camera, {s['object']} ({s['object_source']})")
    for side, h in s["hands"].items():
        print(f"{side:10s} contact frames {h['onset']}..{h['release']}, fingers {', '.join(h['contact_fingers'])}, "
              f"max penetration {h['max_penetration_mm']:.2f} mm")
    print(f"speed      {s['frames_per_second']:.1f} frames/s (+ {res.seconds['build']:.1f} s to build the scene)")
    if level is not None:
        from .oracle import Oracle
        from .oracle_stage import write_object_poses, write_oracle_store

        models = {side: t.kit.model for side, t in res.scene.hands.items()}
        oracle = Oracle.from_store(res.store, level, args.seed if args.oracle_seed is None else args.oracle_seed,
                                   models)
        write_oracle_store(oracle, res.out_dir / "oracle.zarr", f"synth:{cfg.name}?seed={args.seed}", overwrite=True)
        write_object_poses(oracle, res.out_dir / "oracle_object_poses.npz")
        print(f"oracle     {args.oracle}: oracle.zarr, oracle_object_poses.npz")
    print(f"written    {res.out_dir}/ ({', '.join(res.files.values())})")
    return 0
