"""The model-data cache (built once, reloaded in milliseconds, safe against concurrent builders),
and the joint limits and pose prior as residuals."""

from __future__ import annotations

import math
import multiprocessing
import time
from pathlib import Path

import torch
from hand_fixtures import sample_hands
from inscene.models.hands.cache import ENV_CACHE, Progress, build_once, cache_dir


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv(ENV_CACHE)
    assert cache_dir(create=False) == Path.home() / ".cache" / "inscene"


def test_anny_model_data_is_cached_and_reloads_fast(anny_data):
    from inscene.models.hands.anny_hand import load_anny, model_data_path

    for side in ("right", "left"):
        path = model_data_path(side)
        assert path.is_file() and path.stat().st_size < 10_000_000  # ~4 MB, not the 560 MB build cache
    load_anny("right")  # imports
    t0 = time.perf_counter()
    model = load_anny("left")
    assert time.perf_counter() - t0 < 0.5
    assert model.template_vertices.shape == (1609, 3) and len(model.bone_labels) == 21
    assert not list(path.parent.glob("anny-build-*"))  # the temporary anny cache is gone


def _slow_build(target: str, results) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            fh.write("part 1\n")
            fh.flush()
            time.sleep(0.3)
            fh.write("part 2\n")

    results.put(build_once(Path(target), write))


def test_concurrent_builders_build_once(tmp_path):
    target = tmp_path / "model.bin"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_slow_build, args=(str(target), results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    built = sorted(results.get(timeout=5) for _ in procs)
    assert built == [False, False, True]
    assert target.read_text() == "part 1\npart 2\n"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_progress_lines(capsys):
    with Progress("building a thing", "about a second", every=0.05):
        time.sleep(0.12)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("inscene: building a thing (once per machine, about a second)")
    assert any("still working" in line for line in err)
    assert "done in" in err[-1]


def test_joint_limits_residuals(anny_right):
    limits = anny_right.joint_limits
    pose = sample_hands(anny_right, 4, seed=0, spread=3.0).hand_pose  # clamped into the limits
    assert limits.violation(pose).max() < 1e-9
    assert limits.residual(pose).abs().max() < 1e-6  # residual unit: degrees
    wild = 1.5 * torch.randn(4, anny_right.num_pose_joints, 3, generator=torch.Generator().manual_seed(1),
                             dtype=torch.float64)
    assert limits.violation(wild).max() > 0.1
    clamped = limits.clamp(wild)
    assert limits.violation(clamped).max() < 1e-9
    torch.testing.assert_close(limits.clamp(clamped), clamped)
    # residual in degrees outside the range
    assert torch.allclose(limits.residual(wild).abs().max(), limits.violation(wild).max() * 180 / math.pi)
    jac = torch.autograd.functional.jacobian(lambda x: limits.residual(x.reshape(1, -1, 3))[0], wild[:1].flatten())
    torch.testing.assert_close(limits.jacobian(wild[:1])[0], jac)


def test_pose_prior_residuals(anny_right, mano_synthetic):
    for model in (anny_right, mano_synthetic["right"]):
        prior = model.pose_prior
        mean = prior.mean_pose()[None]
        r = prior.residual(mean)
        assert r.shape == (1, prior.num_residuals)
        assert r[0, :3 * model.num_pose_joints].abs().max() < 1e-9  # the Gaussian part vanishes at its mean
        pose = sample_hands(model, 2, seed=1).hand_pose
        jac = torch.autograd.functional.jacobian(lambda x: prior.residual(x.reshape(1, -1, 3))[0], pose[:1].flatten())
        torch.testing.assert_close(prior.jacobian(), jac)
        # samples look like the prior: standardized residuals of unit spread
        many = prior.sample(2000, torch.Generator().manual_seed(2)).double()
        z = prior.residual(many)[:, :3 * model.num_pose_joints]
        assert abs(float(z.std()) - 1.0) < 0.05
