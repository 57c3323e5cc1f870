"""The grasp stage between a synthetic stage-1 feed and an asserting sink, and through the store."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np
import pytest
import torch
from inscene.engine.config import RunConfig
from inscene.engine.frame import Frame, Packet, Status
from inscene.engine.pipeline import Pipeline
from inscene.engine.sources.base import Source, SourceInfo
from inscene.engine.stage import RunContext, Stage
from inscene.engine.stages.grasp import GraspStage, Motion
from inscene.engine.stages.store_sink import StoreSink
from inscene.engine.store import StoreWriter, open_result
from inscene.engine.store.schema import ArraySpec, timing_spec
from inscene.engine.store.writer import WRITE_GROUP
from test_grasp_completion import K, synthetic_reach

FPS = 30.0


class FrameSource(Source):
    """n tiny frames, optionally paced."""

    def __init__(self, n: int, pace_s: float = 0.0) -> None:
        self.n, self.pace_s = n, pace_s

    def open(self) -> SourceInfo:
        return SourceInfo("test:grasp", "generator", False, FPS, 8, 6, self.n)

    def frames(self):
        for i in range(self.n):
            if self.pace_s:
                time.sleep(self.pace_s)
            yield Frame(i, i / FPS, np.zeros((6, 8, 3), np.uint8), time.monotonic())

    def close(self) -> None:
        pass


class WindowFeed(Stage):
    """Synthetic stage 1: per row, {side: WindowHand | None} and the window's store fields."""

    name = "window"
    consumes = ("frame",)
    produces = ("window",)

    def __init__(self, rows: list[dict], P: int, S: int) -> None:
        self.rows, self.P, self.S = rows, P, S

    def fields(self) -> list[ArraySpec]:
        out = []
        for s in ("right", "left"):
            out += [ArraySpec(f"hand/{s}/valid", "bool", (), ("time",), False),
                    ArraySpec(f"hand/{s}/pose", "float32", (self.P + 1, 3), ("time", "pj", "aa"), np.nan),
                    ArraySpec(f"hand/{s}/betas", "float32", (self.S,), ("time", "beta"), np.nan),
                    ArraySpec(f"hand/{s}/transl", "float32", (3,), ("time", "xyz"), np.nan),
                    ArraySpec(f"hand/{s}/joints", "float32", (21, 3), ("time", "joint", "xyz"), np.nan),
                    ArraySpec(f"hand/{s}/in_contact", "bool", (), ("time",), False)]
        return out

    def process(self, packet: Packet) -> list[Packet]:
        hands = self.rows[packet.row]
        packet.data["window"] = hands
        packet.data["object_pose"] = None
        for s in ("right", "left"):
            h = hands.get(s)
            f = packet.fields
            f[f"hand/{s}/valid"] = np.bool_(h is not None)
            f[f"hand/{s}/in_contact"] = np.bool_(h is not None and h.in_contact)
            if h is not None:
                f[f"hand/{s}/pose"] = h.pose.astype(np.float32)
                f[f"hand/{s}/betas"] = h.betas.astype(np.float32)
                f[f"hand/{s}/transl"] = h.transl.astype(np.float32)
                f[f"hand/{s}/joints"] = h.keypoints.astype(np.float32)
        return [packet]


class Collect(Stage):
    """Asserting sink: keeps a copy of every packet it gets."""

    name = "collect"
    timed = False

    def __init__(self) -> None:
        self.packets: list[Packet] = []

    def process(self, packet: Packet) -> list[Packet]:
        self.packets.append(packet)
        return []


def scenario(model, n_approach: int = 40, n_contact: int = 10, n_retreat: int = 20, n_gap: int = 5):
    """Rows of a right-hand reach -> grasp -> release -> retreat, and a left hand that never touches.

    Returns (rows, truth {row: keypoints}, index ranges)."""
    _, reach, kp, _ = synthetic_reach(model, n_approach + 1, seed=1)
    rows: list[dict] = []
    truth: dict[int, np.ndarray] = {}
    for i, h in enumerate(reach):
        onset = i == n_approach
        rows.append({"right": dataclasses.replace(h, in_contact=onset, onset=onset)})
        truth[i] = kp[i]
    contact = reach[-1]
    for _ in range(n_contact - 1):
        rows.append({"right": dataclasses.replace(contact, in_contact=True)})
        truth[len(rows) - 1] = kp[-1]
    _, back, kpb, _ = synthetic_reach(model, n_retreat + 1, seed=2, start=(0.2, -0.05, 0.8),
                                      end=tuple(kp[-1][0]), closing=False)
    for j in range(n_retreat):  # played backwards: from the contact away
        h = back[n_retreat - 1 - j]
        rows.append({"right": dataclasses.replace(h, release=j == 0)})
        truth[len(rows) - 1] = kpb[n_retreat - 1 - j]
    rows += [{} for _ in range(n_gap)]
    _, left, _, _ = synthetic_reach(model, 31, seed=3, start=(0.1, 0.1, 0.9), end=(0.15, 0.0, 0.7))
    for j, h in enumerate(left[: max(0, len(rows) - 5)]):
        rows[5 + j]["left"] = dataclasses.replace(h, side="left")
    ranges = {"approach": range(n_approach), "onset": n_approach,
              "contact": range(n_approach, n_approach + n_contact),
              "retreat": range(n_approach + n_contact, n_approach + n_contact + n_retreat),
              "gap": range(len(rows) - n_gap, len(rows)), "left": range(5, 36)}
    return rows, truth, ranges


@pytest.fixture(scope="module")
def hand(anny_right32):
    torch.set_num_threads(1)
    return anny_right32


def run_chain(rows, model, stages_after, cfg: RunConfig, pace_s: float = 0.0, replay_rows: int = 0):
    grasp = GraspStage(cfg, models={"right": model, "left": model})
    feed = WindowFeed(rows, model.num_pose_joints, model.num_betas)
    src = FrameSource(len(rows), pace_s)
    info = src.open()
    pipe = Pipeline(src, [feed, grasp, *stages_after], live=False, queue_size=4, source_queue_size=4,
                    replay_rows=replay_rows)
    pipe.start(RunContext(cfg, K, info))
    pipe.wait()
    assert not pipe.stats.errors, pipe.stats.errors
    return grasp, feed


def test_stage_between_synthetic_feed_and_asserting_sink(hand):
    rows, truth, rg = scenario(hand)
    # both opt-in; the approach re-solved at the onset itself (settle_s=0: test_the_approach_waits_for_the_contact..)
    cfg = RunConfig().replace("grasp", enabled=True, buffer_s=1.6, retreat=True, settle_s=0.0, keep_frames=0)
    sink = Collect()
    grasp, _ = run_chain(rows, hand, [sink], cfg)
    horizon = grasp._horizon  # frames arrive here the window's hold after the glass; the pipeline adds delay_s
    assert abs(horizon - (1.6 - cfg.window.hold / FPS - cfg.grasp.delay_s)) < 1e-9
    by_row: dict[int, list[Packet]] = {}
    for p in sink.packets:
        by_row.setdefault(p.row, []).append(p)
    assert sorted(by_row) == list(range(len(rows)))
    for r, ps in by_row.items():
        finals = [p for p in ps if p.status == Status.FINAL]
        assert len(finals) == 1 and ps[-1] is finals[0], f"row {r}: final must come once and last"
        revs = [p.revision for p in ps]
        assert revs == sorted(set(revs)), f"row {r}: revisions {revs} must increase"
        assert all(p.status == Status.PROVISIONAL for p in ps[:-1])
    final = {r: ps[-1] for r, ps in by_row.items()}
    onset = rg["onset"]
    t_on = onset / FPS
    solved = [r for r in rg["approach"] if t_on - r / FPS <= horizon + 1e-9]
    fell = [r for r in rg["approach"] if r not in solved]
    assert solved and fell
    for r in solved:
        assert final[r].fields["hand/right/motion"] == Motion.APPROACH and final[r].fields["hand/right/revised"]
        assert by_row[r][0].status == Status.PROVISIONAL  # readers saw it early
    for r in fell:
        assert final[r].fields["hand/right/motion"] == Motion.FREE and not final[r].fields["hand/right/revised"]
        np.testing.assert_array_equal(final[r].fields["hand/right/joints"], rows[r]["right"].keypoints)
    for r in rg["contact"]:
        assert final[r].fields["hand/right/motion"] == Motion.CONTACT
    right_only = [r for r in rg["contact"] if "left" not in rows[r]]
    assert all(final[r].revision == 0 and len(by_row[r]) == 1 for r in right_only)
    for r in rg["retreat"]:
        assert final[r].fields["hand/right/motion"] == Motion.RETREAT and final[r].fields["hand/right/revised"]
    for r in rg["gap"]:
        assert len(by_row[r]) == 1 and final[r].revision == 0
        assert final[r].fields["hand/right/motion"] == Motion.NONE
    for r in rg["left"]:
        assert final[r].fields["hand/left/motion"] == Motion.FREE
    # the onset's segment left as one write group, the onset row last
    end = next(i for i, p in enumerate(sink.packets) if p.row == onset)
    assert int(sink.packets[end].fields[WRITE_GROUP]) == 0  # the onset row (the highest) closes the group
    first = end
    while first > 0 and int(sink.packets[first - 1].fields.get(WRITE_GROUP, -1)) == end - first + 1:
        first -= 1
    assert set(solved) | {onset} <= {p.row for p in sink.packets[first:end + 1]}
    # accuracy: stage 2 beats stage 1 on the re-solved frames
    err = lambda k, r: np.linalg.norm(k[0] - truth[r][0])
    before = np.mean([err(rows[r]["right"].keypoints, r) for r in solved])
    after = np.mean([err(final[r].fields["hand/right/joints"], r) for r in solved])
    assert after < 0.6 * before, (before, after)
    kinds = [s["kind"] for s in grasp.solves]
    assert kinds == ["approach", "retreat"], kinds


def test_the_approach_waits_for_the_contact_to_settle_and_takes_its_latest_hand_size(hand):
    """With ``settle_s``, the approach is re-solved once the contact has lasted that long, at the hand shape of
    the contact frame then (the window's size measure improves through the contact), not at the onset's."""
    rows, _, rg = scenario(hand, n_contact=20)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    for k, r in enumerate(rg["contact"]):  # the size measured through the contact grows
        h = rows[r]["right"]
        rows[r]["right"] = dataclasses.replace(h, betas=np.asarray(h.betas) + np.r_[0.002 * k, np.zeros(len(h.betas) - 1)])
    cfg = RunConfig().replace("grasp", enabled=True, buffer_s=2.8, settle_s=0.2)
    sink = Collect()
    grasp, _ = run_chain(rows, hand, [sink], cfg)
    assert [s["kind"] for s in grasp.solves] == ["approach"]
    settled = rg["onset"] + round(0.2 * FPS)  # the contact frame at which the approach is re-solved
    group = [p for p in sink.packets if p.row == settled]
    assert len(group) == 1
    final = {p.row: p for p in sink.packets if p.status == Status.FINAL}
    revised = [r for r in rg["approach"] if final[r].fields["hand/right/revised"]]
    assert revised
    for r in revised:
        np.testing.assert_allclose(final[r].fields["hand/right/betas"], rows[settled]["right"].betas, atol=1e-6)
        # the revised rows were sent with the settled contact frame, after the contact frame before it
        first_final = next(i for i, p in enumerate(sink.packets) if p.row == r and p.status == Status.FINAL)
        assert first_final > next(i for i, p in enumerate(sink.packets) if p.row == settled - 1)


def test_the_solves_take_the_contact_frames_beside_the_fixed_frame(hand, monkeypatch):
    """The approach solve gets the contact frames after the onset as fixed neighbours (its path runs into
    them), the retreat solve the contact frames before the release."""
    import inscene.engine.stages.grasp as G

    seen: dict[str, list] = {}
    for name in ("complete_approach", "complete_retreat"):
        real = getattr(G, name)

        def spy(*a, _real=real, _name=name, **k):
            seen[_name] = [t for t, _ in k.get("neighbours", ())]
            return _real(*a, **k)

        monkeypatch.setattr(G, name, spy)
    rows, _, rg = scenario(hand, n_contact=10)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    cfg = RunConfig().replace("grasp", enabled=True, buffer_s=2.3, settle_s=0.2, retreat=True, keep_frames=0)
    run_chain(rows, hand, [Collect()], cfg)
    onset, last = rg["onset"], rg["contact"][-1]
    np.testing.assert_allclose(seen["complete_approach"], [(onset + 1) / FPS, (onset + 2) / FPS])
    np.testing.assert_allclose(seen["complete_retreat"], [(last - 2) / FPS, (last - 1) / FPS])


def test_the_last_frames_before_an_onset_keep_stage_1s_values(hand, monkeypatch):
    """By default the window's lag's worth of frames before an onset (the window always decided them with the
    contact frames in view) keep stage 1's values, marked approach but not revised; the re-solve ends on the
    first of them, with the next ones as its fixed neighbours."""
    import inscene.engine.stages.grasp as G

    seen: dict[str, Any] = {}
    real = G.complete_approach

    def spy(model, K, frames, end, times, *a, **k):
        seen.update(frames=len(frames), end_time=float(times[-1]), neighbours=[t for t, _ in k["neighbours"]])
        return real(model, K, frames, end, times, *a, **k)

    monkeypatch.setattr(G, "complete_approach", spy)
    rows, _, rg = scenario(hand)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    cfg = RunConfig().replace("grasp", enabled=True, buffer_s=4.3, settle_s=0.0)
    lag = cfg.window.lag
    sink = Collect()
    run_chain(rows, hand, [sink], cfg)
    final = {p.row: p for p in sink.packets if p.status == Status.FINAL}
    onset = rg["onset"]
    kept = list(range(onset - lag, onset))
    assert seen["frames"] == onset - lag and abs(seen["end_time"] - kept[0] / FPS) < 1e-9
    np.testing.assert_allclose(seen["neighbours"], [(kept[0] + 1) / FPS, (kept[0] + 2) / FPS])
    for r in rg["approach"]:
        assert final[r].fields["hand/right/motion"] == Motion.APPROACH
        assert bool(final[r].fields["hand/right/revised"]) == (r not in kept)
    for r in kept:  # stage 1's values, untouched
        np.testing.assert_array_equal(final[r].fields["hand/right/joints"], rows[r]["right"].keypoints)
    # an approach no longer than the kept frames is not re-solved at all
    seen.clear()
    rows, _, rg = scenario(hand, n_approach=lag - 2)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    sink = Collect()
    run_chain(rows, hand, [sink], cfg)
    final = {p.row: p for p in sink.packets if p.status == Status.FINAL}
    assert not seen
    for r in rg["approach"]:
        assert final[r].fields["hand/right/motion"] == Motion.APPROACH and not final[r].fields["hand/right/revised"]
        np.testing.assert_array_equal(final[r].fields["hand/right/joints"], rows[r]["right"].keypoints)


def test_a_grasp_again_after_a_short_release_is_solved_between_the_contacts(hand):
    """Frames between a release and the next onset (none fell off the buffer) are re-solved with both contact
    frames fixed, also with ``grasp.retreat`` off; once frames fell off, the next onset solves an approach."""
    rows, _, rg = scenario(hand, n_contact=10, n_retreat=6, n_gap=0)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    again = rows[rg["contact"][-1]]["right"]
    rows += [{"right": dataclasses.replace(again, in_contact=True, onset=i == 0, release=False)} for i in range(4)]
    cfg = RunConfig().replace("grasp", enabled=True, buffer_s=2.3, settle_s=0.0, retreat=False, keep_frames=0)
    grasp, _ = run_chain(rows, hand, [Collect()], cfg)
    assert [s["kind"] for s in grasp.solves] == ["approach", "between"]
    assert grasp.solves[1]["frames"] == 6
    # resumed with the first contact replayed (below the watermark): its frames are remembered, the same solve
    grasp, _ = run_chain(rows, hand, [Collect()], cfg, replay_rows=rg["contact"][-1] + 1)
    assert [s["kind"] for s in grasp.solves] == ["between"]
    cfg = cfg.replace("grasp", buffer_s=0.1)  # the released frames fall off before the next contact
    grasp, _ = run_chain(rows, hand, [Collect()], cfg)
    assert [s["kind"] for s in grasp.solves][-1] == "approach"


def test_disabled_stage_finalizes_as_is(hand):
    rows, _, _ = scenario(hand, n_approach=10, n_contact=3, n_retreat=4, n_gap=0)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    cfg = RunConfig().replace("grasp", enabled=False)
    sink = Collect()
    grasp, _ = run_chain(rows, hand, [sink], cfg)
    final = {p.row: p for p in sink.packets if p.status == Status.FINAL}
    assert len(final) == len(rows) and not grasp.solves
    assert not any(bool(p.fields["hand/right/revised"]) for p in final.values())


def test_store_reader_sees_provisional_then_final_never_half_a_segment(hand, tmp_path):
    rows, _, _ = scenario(hand)
    rows = [{k: v for k, v in r.items() if k == "right"} for r in rows]
    cfg = RunConfig().replace("grasp", enabled=True, buffer_s=1.0, keep_frames=0).replace(
        "store", chunk_frames=16, flush_frames=2, flush_interval_s=0.0)
    grasp_specs = GraspStage(cfg, models={"right": hand, "left": hand}).fields()
    feed_specs = WindowFeed(rows, hand.num_pose_joints, hand.num_betas).fields()
    out = tmp_path / "g.zarr"
    writer = StoreWriter.create(out, [*feed_specs, *grasp_specs, timing_spec("decode"), timing_spec("grasp")], {},
                                cfg.store, K)
    sink = StoreSink(writer, ["decode", "window", "grasp"])
    snaps = []
    done = threading.Event()

    def poll():
        r = None
        while not done.is_set():
            try:
                r = r or open_result(out)
                snaps.append(r.latest(["hand/right/revised", "hand/right/motion"]))
            except Exception as e:  # noqa: BLE001 - the store may be opened before its first flush
                snaps.append(e)
            time.sleep(0.001)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    run_chain(rows, hand, [sink], cfg, pace_s=0.004)
    writer.close("complete")
    done.set()
    th.join(10)
    res = open_result(out)
    assert res.finalized_frames == len(rows) and (res.status == 2).all()
    motion = res.array("hand/right/motion")
    rev = res.revision
    segment = np.flatnonzero(motion == Motion.APPROACH)
    assert len(segment) > 5 and (rev[segment] == 1).all()
    snaps = [s for s in snaps if not isinstance(s, Exception)]
    seen = {"provisional": False, "final": False}
    last_rev = np.zeros(len(rows), int)
    for s in snaps:
        n = len(s.status)
        idx = segment[segment < n]
        if len(idx):
            st = s.status[idx]
            assert len(set(st.tolist())) == 1, f"half a segment: statuses {st}"
            assert len(set(s.revision[idx].tolist())) == 1
            assert (s["hand/right/revised"][idx] == (st[0] == 2)).all()
            if st[0] == 1:
                seen["provisional"] = True
            else:
                seen["final"] |= len(idx) == len(segment)
        np.testing.assert_array_less(last_rev[:n] - 1, s.revision.astype(int))  # revisions never go back
        last_rev[:n] = np.maximum(last_rev[:n], s.revision)
        assert (s.status[: s.finalized_frames] == 2).all()

    assert seen["provisional"] and seen["final"], seen
    # the store holds what the stage decided last
    np.testing.assert_array_equal(res.array("hand/right/revised")[segment], True)
