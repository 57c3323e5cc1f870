"""A shared, generated-once synthetic scene for the synth tests (cached for the whole session)."""

from __future__ import annotations

_CACHE: dict = {}


def tiny_scene(tmp_path_factory, model):
    """(SynthResult, Result) of the ``tiny`` preset, seed 0, exact RGB stored; generated once per session."""
    if "tiny" not in _CACHE:
        from inscene.bench.synth import generate, preset
        from inscene.engine import open_result

        out = tmp_path_factory.mktemp("synth") / "tiny"
        res = generate(preset("tiny", store_rgb=True), 0, out, models={"right": model})
        _CACHE["tiny"] = (res, open_result(res.store))
    return _CACHE["tiny"]


def out_and_back(w) -> float:
    """The largest pair of consecutive steps of a path (T, 3) that reverse (a frame out and back), metres."""
    import numpy as np

    u = np.diff(w, axis=0)
    n = np.linalg.norm(u, axis=1)
    reverse = (u[1:] * u[:-1]).sum(1) < -0.5 * n[1:] * n[:-1]
    return float((np.minimum(n[1:], n[:-1]) * reverse).max(initial=0.0))
