"""Generate a synthetic scene to disk: ground-truth store, video, object mesh, intrinsics; and its benchmark.

``generate(config, seed, out_dir)`` writes::

    out_dir/gt.zarr           the ground truth, in the engine's store schema (see ``truth``)
    out_dir/video.mp4         the RGB frames (H.264, near-lossless)
    out_dir/object.obj        the object's mesh in its frame, metres (+ .mtl and texture .png)
    out_dir/intrinsics.json   {"fx", "fy", "cx", "cy", "K"} for ``inscene run --intrinsics``
    out_dir/scene.json        what was made: preset, seed, files, onset/release frames, grasp figures
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from inscene.engine.config import StoreConfig
from inscene.engine.errors import InputError
from inscene.engine.frame import Status
from inscene.engine.store.writer import StoreWriter

from .config import SceneConfig, preset
from .render import Renderer
from .scene import Scene, build_scene
from .truth import field_specs, frame_row, root_attrs, static_arrays

GENERATOR_VERSION = 3
"""Raised whenever the same preset and seed make a different scene; ``scene.json`` records it, and the benchmarks'
scene caches regenerate a scene made by another version (2: the frames where closing or opening fingers reach into
the object are moved out along its surface, by millimetres, instead of backing the hand off along the approach,
which had moved single frames by 13-61 mm; 3: the reach to a grasp is one movement that decelerates into the
object, where it had stopped 7 cm short and slid in over ~0.2 s, the closing lasts at least 0.4 s, and the
clearance corrections are smoothed over time instead of differing by millimetres from frame to frame)."""


def is_current(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a finished scene made by this generator version."""
    path = Path(out_dir) / "scene.json"
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("generator") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


class VideoWriter:
    """H.264 mp4 through PyAV: ``write(rgb (H, W, 3) uint8)`` per frame, then ``close()``."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, crf: int = 12) -> None:
        import av

        self._container = av.open(str(path), "w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._stream.time_base = 1 / rate
        self._n = 0

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._n
        self._n += 1
        for pkt in self._stream.encode(frame):
            self._container.mux(pkt)

    def close(self) -> None:
        for pkt in self._stream.encode():
            self._container.mux(pkt)
        self._container.close()


class _Sink:
    """A thread that turns rendered frames into store rows and video frames, in order (bounded queue)."""

    def __init__(self, scene: Scene, writer: StoreWriter, video: VideoWriter | None, depth: int = 4) -> None:
        import queue
        import threading

        self.scene, self.writer, self.video = scene, writer, video
        self.queue: queue.Queue = queue.Queue(depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="synth-sink", daemon=True)
        self.thread.start()

    def put(self, i: int, frame: Any, render_ms: float) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((i, frame, render_ms))

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            i, frame, ms = item
            try:
                self.writer.put(i, frame_row(self.scene, i, frame, ms), Status.FINAL)
                self.writer.maybe_flush()
                if self.video is not None:
                    self.video.write(frame.rgb)
            except BaseException as e:  # noqa: BLE001 - re-raised in the producer
                self.error = e

    def close(self, abort: bool = False) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and not abort:
            raise self.error


@dataclass
class SynthResult:
    """What :func:`generate` made and how long it took."""

    out_dir: Path
    scene: Scene
    files: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    render_ms: list[float] = field(default_factory=list)
    """Per frame: rendering (RGB, depth, labels, amodal masks), milliseconds."""

    @property
    def frames_per_second(self) -> float:
        """Throughput of the whole per-frame work: render, ground-truth row, store, video."""
        return self.scene.n_frames / max(self.seconds.get("frames", 0.0), 1e-9)

    @property
    def store(self) -> Path:
        return self.out_dir / "gt.zarr"

    def summary(self) -> dict[str, Any]:
        s = self.scene
        return {"generator": GENERATOR_VERSION, "preset": s.config.name, "seed": s.seed, "frames": s.n_frames,
                "size": list(s.size),
                "fps": s.config.fps, "camera": s.config.camera, "object": s.object.kind,
                "object_source": s.object.source, "files": self.files,
                "hands": {side: {"onset": t.onset, "release": t.release,
                                 "contact_fingers": list(t.grasp.contact_fingers),
                                 "max_penetration_mm": round(float(t.penetration.max()) * 1e3, 3)}
                          for side, t in s.hands.items()},
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "frames_per_second": round(self.frames_per_second, 2)}


def export_object(scene: Scene, path: Path) -> None:
    """Write the object's mesh (with its texture when it has one) as an OBJ (+ .mtl, .png) in metres."""
    import trimesh
    from PIL import Image

    m = scene.object.mesh
    visual = None
    if m.uv is not None and m.texture is not None:
        material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(m.texture))
        visual = trimesh.visual.TextureVisuals(uv=m.uv, image=Image.fromarray(m.texture), material=material)
    mesh = trimesh.Trimesh(m.vertices, m.faces, visual=visual, process=False)
    mesh.export(str(path), file_type="obj", mtl_name=path.with_suffix(".mtl").name)


def generate(config: SceneConfig | str, seed: int, out_dir: str | Path, overwrite: bool = False,
             models: dict | None = None, video: bool = True, progress: Any = None) -> SynthResult:
    """Build, render and write the scene of ``config`` (or a preset name) and ``seed`` into ``out_dir``."""
    cfg = preset(config) if isinstance(config, str) else config
    out = _prepare(Path(out_dir), overwrite)
    t0 = time.perf_counter()
    scene = build_scene(cfg, seed, models)
    result = write_scene(scene, out, video=video, progress=progress)
    result.seconds["build"] = time.perf_counter() - t0 - result.seconds["frames"] - result.seconds["files"]
    (out / "scene.json").write_text(json.dumps(result.summary(), indent=1))
    return result


def _prepare(out: Path, overwrite: bool) -> Path:
    store = out / "gt.zarr"
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "exists and is not a folder", "choose another -o")
    if store.exists() and not overwrite:
        raise InputError(str(out), "already holds a synthetic scene (gt.zarr)", "pass --overwrite or choose another -o")
    out.mkdir(parents=True, exist_ok=True)
    if store.exists():
        shutil.rmtree(store)
    return out


def write_scene(scene: Scene, out_dir: str | Path, video: bool = True, progress: Any = None) -> SynthResult:
    """Render every frame of a built scene and write the store, the video and the side files into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = scene.config
    store = out / "gt.zarr"
    t1 = time.perf_counter()
    renderer = Renderer(scene)
    # flush whole chunks only (a time-based flush would rewrite the open chunk of every image array)
    store_cfg = StoreConfig(chunk_frames=cfg.chunk_frames, flush_frames=cfg.chunk_frames, flush_interval_s=1e9)
    writer = StoreWriter.create(store, field_specs(scene), root_attrs(scene), store_cfg, scene.K,
                                static_arrays(scene), overwrite=True)
    files = {"store": "gt.zarr"}
    vw = None
    if video:
        vw = VideoWriter(out / "video.mp4", cfg.size, cfg.fps)
        files["video"] = "video.mp4"
    render_ms: list[float] = []
    sink = _Sink(scene, writer, vw)  # writes and encodes in its own thread while the next frame renders
    try:
        for i in range(scene.n_frames):
            f0 = time.perf_counter()
            frame = renderer.frame(i)
            render_ms.append((time.perf_counter() - f0) * 1e3)
            sink.put(i, frame, render_ms[-1])
            if progress is not None:
                progress(i + 1, scene.n_frames)
        sink.close()
    except BaseException:
        sink.close(abort=True)
        writer.close("failed")
        raise
    finally:
        if vw is not None:
            vw.close()
    writer.close("complete")
    t2 = time.perf_counter()
    export_object(scene, out / "object.obj")
    files["object"] = "object.obj"
    f = scene.K
    (out / "intrinsics.json").write_text(json.dumps({"fx": f[0, 0], "fy": f[1, 1], "cx": f[0, 2], "cy": f[1, 2],
                                                     "K": f.tolist()}, indent=1))
    files["intrinsics"] = "intrinsics.json"
    files["summary"] = "scene.json"
    result = SynthResult(out, scene, files, {"frames": t2 - t1, "files": time.perf_counter() - t2, **scene.timings},
                         render_ms)
    (out / "scene.json").write_text(json.dumps(result.summary(), indent=1))
    return result


def bench_synth_fps(preset_name: str = "mug_static", n_frames: int = 120, seed: int = 0, repeats: int = 3,
                    out_dir: str | Path | None = None) -> dict[str, Any]:
    """Synthetic frames per second of ``preset_name`` over ``n_frames`` frames (for ``inscene bench kernels``).

    Builds the scene once (timed apart: object and SDF, grasp synthesis and motion,
    contact truth), then measures (after a warm-up frame) the rendering alone per frame
    (RGB, depth, labels, amodal masks) and, ``repeats`` times, the whole per-frame work
    (render, ground-truth rows into the store, H.264 encoding; into a temporary folder
    unless ``out_dir``) as frames per second of wall time.

    Returns:
        ``{"fps": median throughput of the whole work, "render_fps", "render_ms": stats,
        "fps_runs": stats, "setup_s", "setup_breakdown_s", "preset", "n_frames", "size"}``
        (stats: median, iqr, min, max, n).
    """
    import tempfile

    from inscene.bench.report import stats

    cfg = preset(preset_name, n_frames=max(int(n_frames), 24))
    t0 = time.perf_counter()
    scene = build_scene(cfg, seed)
    setup = time.perf_counter() - t0
    renderer = Renderer(scene)
    renderer.frame(0)  # warm-up (numba dispatch, caches)
    render_ms = []
    for i in range(scene.n_frames):
        f0 = time.perf_counter()
        renderer.frame(i)
        render_ms.append((time.perf_counter() - f0) * 1e3)
    runs = []
    for _ in range(max(int(repeats), 1)):
        with tempfile.TemporaryDirectory(prefix="inscene-synth-") as tmp:
            runs.append(write_scene(scene, out_dir or tmp).frames_per_second)
    r, f = stats(render_ms), stats(runs)
    w, h = cfg.size
    return {"preset": cfg.name, "n_frames": scene.n_frames, "size": f"{w}x{h}", "setup_s": round(setup, 3),
            "setup_breakdown_s": {k: round(v, 3) for k, v in scene.timings.items()},
            "render_ms": r, "render_fps": 1e3 / r["median"], "fps_runs": f, "fps": f["median"]}
