"""Composing and running a job: the one place where stages are wired.

``run_job`` opens the source, resolves the camera, builds the stage chain
(``compose``), checks it, creates or resumes the store, runs the pipeline with a
progress display and signal handling, and closes the store with the outcome.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .camera import default_K, intrinsics_matrix
from .config import RunConfig
from .errors import InsceneError, SourceError, StoreError
from .hand_selection import resolve_hand_model
from .pipeline import Pipeline
from .progress import ProgressDisplay
from .sources import open_source
from .sources.base import Source, SourceInfo
from .stage import RunContext, Stage
from .stages.store_sink import StoreSink
from .store.schema import timing_spec
from .store.writer import StoreWriter, read_root_attrs

StageFactory = Callable[[RunConfig, RunContext], list[Stage]]


@dataclass(frozen=True)
class JobRequest:
    """What ``inscene run`` asks for."""

    source: str
    output: Path
    config: RunConfig = field(default_factory=RunConfig)
    mode: str = "create"
    """``create`` (fail if the output exists), ``overwrite`` or ``resume``."""
    stage_factory: StageFactory | None = None
    """Builds the model stages; None uses :func:`compose`."""


@dataclass
class JobOutcome:
    """How a run ended."""

    state: str  # complete | interrupted | failed | up-to-date
    rows: int
    finalized: int
    dropped: int
    seconds: float
    error: InsceneError | None = None
    stopped_by: str | None = None
    queue_high_water: list[int] = field(default_factory=list)
    store_seconds: float = 0.0
    """Time the store sink spent writing (puts and flushes)."""
    setup_seconds: float = 0.0
    """Part of ``seconds`` spent setting the stages up (loading models) before the first frame."""

    @property
    def fps(self) -> float:
        """Finalized frames per second of running (stage setup excluded)."""
        return self.finalized / max(self.seconds - self.setup_seconds, 1e-9)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        if self.state == "interrupted":
            return 143 if self.stopped_by == "SIGTERM" else 130
        return 0


def compose(config: RunConfig, ctx: RunContext) -> list[Stage]:
    """The default chain of model stages (source and store sink excluded)."""
    stages: list[Stage] = []
    models = None  # the hand models, loaded once for the object, window and grasp stages of this process
    if config.hands.enabled:
        from inscene.models.hands import load_hand_models

        from .stages.hands import hand_stages

        stages += hand_stages(config, ctx)
        if config.window.enabled or config.object.mesh is not None:
            models = load_hand_models(config.hands.model, config.hands.mano_dir)
    if config.object.mesh is not None:
        stages.append(_object_stage(config, models))
    if config.hands.enabled:
        stages += refinement_stages(config, models)
    return stages


def refinement_stages(config: RunConfig, models: dict | None = None) -> list[Stage]:
    """Stage 1 (the window) and stage 2 (grasp completion), as the config enables them (``models``: the hand
    models, loaded here when not given)."""
    if not config.window.enabled:
        return []
    from .stages.window import WindowStage

    window = WindowStage(config, models=models)
    stages: list[Stage] = [window]
    if config.engine.workers:
        from .worker import WorkerStage

        stages = [WorkerStage(window, WindowStage, config)]
    if config.grasp.enabled:
        from .stages.grasp import GraspStage

        stages.append(GraspStage(config, models=window.models))
    return stages


def _object_stage(config: RunConfig, hand_models: dict | None = None) -> Stage:
    from .stages.objects import object_stage

    return object_stage(config, hand_models)


_RESUME_IGNORED = {("engine", "progress")}


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    return {sec: {k: v for k, v in vals.items() if (sec, k) not in _RESUME_IGNORED} for sec, vals in cfg.items()}


def run_job(req: JobRequest, progress: bool | None = None) -> JobOutcome:
    """Run one job to its end. Raises :class:`InsceneError` for bad input found
    before the first frame; problems during the run are reported in the outcome."""
    cfg = req.config
    out = Path(req.output)
    resume_attrs: dict[str, Any] | None = None
    if req.mode == "resume":
        if not out.exists():
            raise StoreError(str(out), "nothing to resume: the store does not exist", "run without --resume")
        resume_attrs = read_root_attrs(out)
        if resume_attrs.get("state") == "complete":
            return JobOutcome("up-to-date", int(resume_attrs.get("rows", 0)), int(resume_attrs["finalized_frames"]),
                              0, 0.0)
        stored = resume_attrs.get("source", {}).get("uri")
        if stored != req.source:
            raise StoreError(str(out), f"was written from '{stored}', not '{req.source}'", "resume with the same source")
        if _comparable(resume_attrs.get("config", {})) != _comparable(cfg.to_dict()):
            raise StoreError(str(out), "was written with a different config", "resume with the original config and flags")
    elif out.exists() and req.mode == "create":
        raise StoreError(str(out), "output already exists", "pass --resume to continue it or --overwrite to replace it")

    probe = open_source(req.source, cfg.source)
    info = probe.open()
    try:
        source, ctx, stages, writer, live, watermark, replay = _prepare(req, probe, info, resume_attrs)
    except BaseException:
        probe.close()
        raise
    timed = ["decode", *(s.name for s in stages if s.timed)]
    sink = StoreSink(writer, timed)
    pipeline = Pipeline(source, [*stages, sink], live=live, queue_size=cfg.engine.queue_size,
                        source_queue_size=cfg.source.queue_size, first_row=watermark - replay, replay_rows=replay)
    show = cfg.engine.progress if progress is None else progress
    display = ProgressDisplay(info, pipeline.stats, writer, enabled=show, live=live, first_row=watermark)
    restore = _install_signal_handlers(pipeline)
    t0 = time.monotonic()
    try:
        pipeline.start(ctx)
        with display:
            pipeline.wait(poll=display.update)
    finally:
        restore()
    stats = pipeline.stats
    error: InsceneError | None = stats.errors[0] if stats.errors else stats.source_error
    if error is not None:
        state = "failed"
    elif stats.stopped_by is not None:
        state = "interrupted"
    else:
        state = "complete"
    writer.close(state, dropped=pipeline.dropped, error=str(error) if error else None,
                 stopped_by=stats.stopped_by)
    setup = (stats.ready - t0) if stats.ready is not None else 0.0
    return JobOutcome(state, writer.rows, writer.watermark, pipeline.dropped, time.monotonic() - t0, error,
                      stats.stopped_by, pipeline.queue_high_water, sink.seconds, setup)


def _prepare(req: JobRequest, probe: Source, info: SourceInfo, resume_attrs: dict[str, Any] | None):
    """Camera, stages, the (re-opened) source and the store writer, checked before the first frame."""
    cfg = req.config
    out = Path(req.output)
    live = info.live if cfg.source.live is None else cfg.source.live
    if cfg.camera.intrinsics is not None:
        K = intrinsics_matrix(*cfg.camera.intrinsics)
    else:
        K = default_K(info.width, info.height, cfg.camera.fov_deg)
    ctx = RunContext(config=cfg, K=K, source_info=info)
    stages = (req.stage_factory or compose)(cfg, ctx)
    Pipeline.validate(stages)

    watermark = int(resume_attrs["finalized_frames"]) if resume_attrs else 0
    replay = min(watermark, max((s.history for s in stages), default=0)) if watermark and not live else 0

    timed = ["decode", *(s.name for s in stages if s.timed)]
    specs = [spec for s in stages for spec in s.fields()] + [timing_spec(n) for n in timed]
    if resume_attrs is not None:
        writer = StoreWriter.resume(out, cfg.store)
    else:
        attrs = {
            "inscene_version": __version__,
            "source": {"uri": req.source, "kind": info.kind, "fps": info.fps, "size": [info.width, info.height],
                       "live": live, "n_frames": info.n_frames},
            "config": cfg.to_dict(),
            "camera": {"intrinsics": "given" if cfg.camera.intrinsics else f"default fov {cfg.camera.fov_deg} deg"},
            "world_frame": "first camera",
            "hand_model": _hand_model_attr(cfg),
            "stages": [s.name for s in stages],
        }
        static: dict[str, Any] = {}
        for s in stages:
            static.update(s.static_fields())
        writer = StoreWriter.create(out, specs, attrs, cfg.store, K, static, overwrite=req.mode == "overwrite")

    source = probe
    if watermark and not live:
        # Re-open the file at the first frame still to do, minus the history the
        # stages need to rebuild their state (those rows are replayed, not written).
        start = cfg.source.start + (watermark - replay) * cfg.source.stride
        probe.close()
        source = open_source(req.source, dataclasses.replace(cfg.source, start=start))
        source.open()
    return source, ctx, stages, writer, live, watermark, replay


def _hand_model_attr(cfg: RunConfig) -> dict[str, Any]:
    """Which hand model the run uses (checked now, so a bad choice fails before the first frame)."""
    kind, folder = resolve_hand_model(cfg.hands.model, cfg.hands.mano_dir)
    return {"kind": kind, "mano_dir": folder}


def _install_signal_handlers(pipeline: Pipeline) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the source and let the run finalize; a second signal aborts."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    count = {"n": 0}

    def handler(signum: int, _frame: Any) -> None:
        count["n"] += 1
        name = signal.Signals(signum).name
        if count["n"] == 1:
            pipeline.stop(name)
        else:
            pipeline.abort(name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


__all__ = ["JobOutcome", "JobRequest", "SourceError", "compose", "run_job"]
