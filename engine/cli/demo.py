"""``inscene demo``: the built-in default job, end to end, and where its results are.

Until the model stages exist, the demo generates a short 640x480 H.264 clip,
runs the engine on it (decode → engine → store, no model stages) and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..app import JobRequest, run_job
from ..config import RunConfig
from .info import main as info_main


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, default=Path("out/demo"), help="folder for the clip and the store")
    p.add_argument("--frames", type=int, default=150, help="length of the generated clip")


def main(args: argparse.Namespace) -> int:
    from inscene.bench.clips import write_clip

    out: Path = args.output
    clip = write_clip(out / "clip.mp4", n=args.frames, size=(640, 480), fps=30)
    print(f"inscene demo: generated a {args.frames}-frame 640x480 clip: {clip}")
    print("inscene demo: no model stages are built yet, so this runs the engine alone "
          "(decode -> engine -> Zarr store) on the generated clip")
    store = out / "result.zarr"
    o = run_job(JobRequest(str(clip), store, RunConfig().replace("hands", enabled=False), mode="overwrite"))
    if o.error is not None:
        raise o.error
    print(f"inscene demo: {o.state}, {o.finalized} frames in {o.seconds:.2f} s "
          f"({o.finalized / max(o.seconds, 1e-9):.0f} fps)\n")
    info_main(argparse.Namespace(store=str(store), json=False))
    print(f"\nresults: {store.resolve()}  (read it with inscene.engine.open_result or 'inscene info {store}')")
    return 0
