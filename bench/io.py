"""I/O: decode alone vs decode → engine → store with no model stages (720p H.264).

Reports frames/s for decoding alone (the file source, frames converted to RGB),
for the whole engine with no model stages (decode thread, store sink thread,
queues, per-frame timing, the Zarr writer), the engine's overhead per frame as a
ratio of the decode time, and the store's write cost per frame.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


from .clips import write_clip
from .report import fmt, header, stats, write_json

SHARED_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clips" / "04_coffee.mp4"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", type=Path, help="720p H.264 clip (default: ../shared/data/clips/04_coffee.mp4, "
                                             "else a generated one)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of each measurement (after one warm-up)")
    p.add_argument("--frames", type=int, default=0, help="use only the first N frames (0: all)")
    p.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/io.json)")


def decode_only(clip: Path, cfg) -> tuple[float, int]:
    from inscene.engine.sources import open_source

    src = open_source(str(clip), cfg.source)
    src.open()
    t0 = time.perf_counter()
    n = 0
    for _ in src.frames():
        n += 1
    dt = time.perf_counter() - t0
    src.close()
    return dt, n


def engine_run(clip: Path, cfg, out: Path) -> tuple[float, int, float]:
    from inscene.engine.app import JobRequest, run_job

    t0 = time.perf_counter()
    o = run_job(JobRequest(str(clip), out, cfg, mode="overwrite"), progress=False)
    dt = time.perf_counter() - t0
    if o.error is not None:
        raise o.error
    return dt, o.finalized, o.store_seconds


def main(args: argparse.Namespace) -> int:
    from inscene.engine.config import RunConfig

    tmp = Path(tempfile.mkdtemp(prefix="inscene-bench-io-"))
    try:
        clip = args.clip or (SHARED_CLIP if SHARED_CLIP.exists() else write_clip(tmp / "clip720.mp4"))
        cfg = RunConfig().replace("hands", enabled=False)  # no model stages: engine and store only
        if args.frames:
            cfg = cfg.replace("source", end=args.frames)
        print(header("inscene bench io"))
        print(f"clip: {clip}")
        decode_only(clip, cfg)  # warm-up (page cache, codec init)
        engine_run(clip, cfg, tmp / "warm.zarr")
        dec, eng, store = [], [], []
        n = 0
        for _ in range(args.repeats):  # interleaved, so both see the same machine state
            dt, n = decode_only(clip, cfg)
            dec.append(dt / n * 1e3)
            dt, rows, flush_s = engine_run(clip, cfg, tmp / "run.zarr")
            assert rows == n, f"engine wrote {rows} rows for {n} frames"
            eng.append(dt / n * 1e3)
            store.append(flush_s / n * 1e3)
        d, e, s = stats(dec), stats(eng), stats(store)
        overhead = [b - a for a, b in zip(dec, eng)]
        ratio = [o / a for o, a in zip(overhead, dec)]
        figures = {
            "frames": n,
            "decode_ms_per_frame": d, "engine_ms_per_frame": e,
            "decode_fps": 1e3 / d["median"], "engine_fps": 1e3 / e["median"],
            "overhead_ms_per_frame": stats(overhead), "overhead_ratio": stats(ratio),
            "store_write_ms_per_frame": s,
        }
        print(f"frames per run            {n}")
        print(f"decode only               {fmt(d, ' ms/frame')}  = {figures['decode_fps']:.1f} fps")
        print(f"decode → engine → store   {fmt(e, ' ms/frame')}  = {figures['engine_fps']:.1f} fps")
        print(f"engine overhead           {fmt(stats(overhead), ' ms/frame', 3)}")
        print(f"overhead / decode         {fmt(stats(ratio), '', 3)}")
        print(f"store write cost          {fmt(s, ' ms/frame', 3)}  (time in the store sink thread: row puts + chunk flushes)")
        print(f"json: {write_json('io', figures, args.json)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
