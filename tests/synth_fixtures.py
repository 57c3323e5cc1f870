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
