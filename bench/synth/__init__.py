"""Synthetic hand-object scenes with ground truth, and oracle perception for measuring the optimizer.

``generate(preset, seed, out_dir)`` builds a scene (object, grasp synthesized by
optimization, approach -> grasp -> lift/move/rotate -> place -> release -> retreat,
static or head-mounted camera, one or two hands), renders it with the kernels'
rasterizer (RGB, depth, labels) and writes the ground truth in the engine's store
schema plus an mp4. ``Oracle`` turns a ground-truth store into noisy perception.
``bench_synth_fps`` measures the generator's speed. CLI: ``inscene synth``.
"""

from __future__ import annotations

from .config import PRESETS, MotionConfig, SceneConfig, preset
from .generate import SynthResult, bench_synth_fps, generate, write_scene
from .oracle import ORACLE_LEVELS, Oracle, OracleConfig, oracle_config
from .render import LABELS, RenderedFrame, Renderer, render_labels
from .scene import HandTrack, Scene, build_scene

__all__ = [
    "LABELS", "ORACLE_LEVELS", "PRESETS", "HandTrack", "MotionConfig", "Oracle", "OracleConfig", "RenderedFrame",
    "Renderer", "Scene", "SceneConfig", "SynthResult", "bench_synth_fps", "build_scene", "generate", "oracle_config",
    "preset", "render_labels", "write_scene",
]
