"""Stage 2: grasp completion — approach frames wait provisional, are re-solved on contact onset.

Per hand, frames without contact go into a bounded approach buffer and downstream
at once as *provisional* copies (status 1), so a live reader sees them. On contact
onset the buffered approach is re-solved backward from the (optimized) first
contact frame (``engine/grasp/completion.py``) and the revised rows go downstream
*final* with a higher revision, together with the onset row, as one write group
(the store flushes the segment at once: no reader sees it half rewritten); the last
``grasp.keep_frames`` before the onset (the window's lag: it decided them with the
contact in view) keep stage 1's values and end the re-solved path. Frames
that fall off the buffer without an onset are finalized as they are. After a
release the frames are buffered the same way; when a new contact starts before
any of them fell off, they are re-solved between the two contacts (both ends
fixed: a hand that lets go and grasps again is no reach from rest). With
``grasp.retreat`` a retreat is also re-solved forward from the last contact frame
when its first frame would fall off the buffer.

Two hands. Each side decides its own frames; a row (one frame, both sides) is
*final* only when both sides' values in it are decided: a side is decided for a
row when it is absent from the frame, in contact, or its buffered frame was
re-solved or fell off the buffer. A row with a side still buffered is provisional;
when one side is decided first the row is re-emitted provisional with that side's
new values (revision + 1) and finalized (revision + 1 again) when the other side is
decided. Revisions of a row therefore only grow, and a row's final values are
written last. Rows may leave in any order; the store's watermark only advances
over a prefix of final rows.

Bound: a frame waits at most ``grasp.buffer_s`` from its arrival (in presentation
time, the window's hold included) before it is decided. On resume every buffered
frame is above the watermark (it was provisional), so the buffer restarts empty
at the watermark, as the uninterrupted run had it there: no history is needed.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from ..config import RunConfig
from ..frame import Packet, Status
from ..grasp.completion import (
    CompletionConfig,
    RevisedHand,
    complete_approach,
    complete_between,
    complete_retreat,
)
from ..grasp.prior import make_prior
from ..stage import RunContext, Stage
from ..store.schema import ArraySpec
from ..store.writer import WRITE_GROUP
from ..window.types import WindowHand

SIDES = ("right", "left")


class Motion(IntEnum):
    """What stage 2 decided for a hand in a frame (``hand/{side}/motion``)."""

    NONE = 0
    """No hand in the frame."""
    FREE = 1
    """Away from the object: finalized as stage 1 had it (fell off the buffer, or the stream ended)."""
    APPROACH = 2
    """Before a contact onset: re-solved backward from it, or (``revised`` False) one of the last
    ``grasp.keep_frames`` before it, kept as stage 1 decided them."""
    CONTACT = 3
    """In contact (stage 1's values)."""
    RETREAT = 4
    """Re-solved forward from a release."""


NEIGHBOURS = 2
"""Stage-1 contact frames beyond the fixed frame that a re-solve takes as fixed too: the revised path's
acceleration runs into them (``CompletionConfig.sigma_accel``), so it continues the contact's motion."""


@dataclass
class _Row:
    packet: Packet
    pending: set[str]
    emitted: int = 0
    """Copies sent downstream so far."""


@dataclass
class _Frame:
    row: int
    time: float
    hand: WindowHand
    object_pose: np.ndarray | None


@dataclass
class _Track:
    frames: deque = field(default_factory=deque)  # of _Frame, oldest first
    last_contact: tuple[WindowHand, float, np.ndarray | None] | None = None
    in_contact: bool = False
    retreat: bool = False
    """The buffer starts right after a release (its frames are a retreat) and ``grasp.retreat`` re-solves it."""
    since_release: bool = False
    """The buffer holds every frame since the last contact ended (none fell off): an onset re-solves them with
    both ends fixed, the release and the onset."""
    onset: tuple[WindowHand, float, np.ndarray | None] | None = None
    """The first contact frame of a contact whose approach waits to be re-solved (``grasp.settle_s``)."""
    released: tuple[WindowHand, float, np.ndarray | None] | None = None
    """The last contact frame before that approach (the fixed start of a release-to-onset solve)."""
    recent: deque = field(default_factory=lambda: deque(maxlen=NEIGHBOURS + 1))
    """(time, hand) of the latest contact frames, oldest first."""
    after_onset: list = field(default_factory=list)
    """(time, hand) of the contact frames after ``onset`` (up to ``NEIGHBOURS``)."""
    before_release: list = field(default_factory=list)
    """(time, hand) of the contact frames before ``released`` (up to ``NEIGHBOURS``)."""

    def touch(self, hand: WindowHand, t: float, obj: np.ndarray | None) -> None:
        """The hand is in contact in this frame."""
        self.in_contact, self.last_contact = True, (hand, t, obj)
        self.recent.append((t, hand))


class GraspStage(Stage):
    """Approach buffer per hand, backward completion on onset, provisional -> final rows."""

    name = "grasp"
    consumes = ("window",)
    produces = ("grasp",)
    needs_image = False

    def __init__(self, run: RunConfig, models: dict[str, Any] | None = None, grid: Any = None,
                 completion: CompletionConfig | None = None) -> None:
        self.run = run
        self.config = run.grasp
        self.completion = completion or CompletionConfig()
        self.prior = make_prior(self.config.prior)
        if models is None:
            from inscene.models.hands import load_hand_models

            models = load_hand_models(run.hands.model, run.hands.mano_dir)
        self.models = models
        self.grid = grid
        self._K: np.ndarray | None = None
        self._horizon = self.config.buffer_s
        self._keep = 0
        self._rows: dict[int, _Row] = {}
        self._tracks = {s: _Track() for s in SIDES}
        self.solves: list[dict[str, Any]] = []
        """One record per re-solve (side, kind, frames, ms), for benchmarks and tests."""

    # -- declarations ------------------------------------------------------------------

    def fields(self) -> list[ArraySpec]:
        out = []
        for s in SIDES:
            out += [ArraySpec(f"hand/{s}/revised", "bool", (), ("time",), False,
                              doc=f"{s} hand: values re-solved by grasp completion (stage 2)"),
                    ArraySpec(f"hand/{s}/motion", "uint8", (), ("time",), 0,
                              doc=f"{s} hand: 0 none, 1 free, 2 approach, 3 contact, 4 retreat (re-solved if revised)")]
        return out

    def setup(self, ctx: RunContext) -> None:
        self._K = np.asarray(ctx.K, np.float64)
        fps = getattr(ctx.source_info, "fps", None) or 30.0
        hold_s = self.run.window.hold / fps if self.run.window.enabled else 0.0
        # frames reach this stage up to the window's hold (and the pipeline's delay) after they arrived, and the
        # newest frame here may be that much behind the newest that arrived: keep them that much less
        self._horizon = max(self.config.buffer_s - hold_s - self.config.delay_s, min(self.config.buffer_s, 0.5))
        keep = self.config.keep_frames
        self._keep = (self.run.window.lag if self.run.window.enabled else 0) if keep < 0 else keep
        if self.grid is None and self.run.object.mesh is not None:
            from inscene.kernels import sdf_grid
            from inscene.models.objects.mesh import load_object_mesh

            mesh = load_object_mesh(self.run.object.mesh, self.run.object.units)
            self.grid = sdf_grid((mesh.vertices, mesh.faces))
        if self.config.enabled:  # numba loads its kernels on a process's first call: here, not at the first onset
            from inscene.models.hands.jacobian import warm_kernels

            for m in self.models.values():
                warm_kernels(m)
            if self.grid is not None:
                self.grid.lookup(np.zeros((1, 3)))

    # -- the stream ----------------------------------------------------------------------

    def process(self, packet: Packet) -> list[Packet]:
        if packet.replay:  # below the watermark: final already, nothing to buffer; the contact state is rebuilt
            self._remember_contacts(packet)
            return [packet]
        t_start = time.perf_counter()
        hands: dict[str, WindowHand | None] = packet.data.get("window") or {}
        obj = packet.data.get("object_pose")
        t = float(packet.frame.time)
        row = _Row(packet, set())
        self._rows[packet.row] = row
        touched: set[int] = {packet.row}
        for side in SIDES:
            touched |= self._trim(side, t)  # no frame waits longer than the buffer allows
            h = hands.get(side)
            tr = self._tracks[side]
            if h is None:
                self._set(packet, side, None, Motion.NONE)
                continue
            if h.in_contact:
                if tr.frames and tr.onset is None:
                    tr.onset, tr.released = (h, t, obj), tr.last_contact
                    tr.after_onset, tr.before_release = [], list(tr.recent)[:-1]
                elif tr.onset is not None and len(tr.after_onset) < NEIGHBOURS:
                    tr.after_onset.append((t, h))
                tr.touch(h, t, obj)
                settle = self.config.settle_s if self.config.enabled else 0.0
                if tr.onset is not None and t - tr.onset[1] >= settle:
                    touched |= self._solve(side, end=tr.onset, size=h)
                self._set(packet, side, None, Motion.CONTACT)
                continue
            touched |= self._solve_waiting(side)  # the contact ended before it settled: what it measured
            if tr.in_contact or h.release:  # first frame after a contact: a retreat begins
                if tr.frames:  # (a contact without onset flag would leave frames; decide them first)
                    touched |= self._decide_as_is(side, list(tr.frames))
                    tr.frames.clear()
                tr.retreat = self.config.retreat and tr.last_contact is not None
                tr.since_release = tr.last_contact is not None
            tr.in_contact = False
            tr.frames.append(_Frame(packet.row, t, h, obj))
            row.pending.add(side)
            self._set(packet, side, None, Motion.FREE)
        # the pipeline times the call after it returns, too late for copies sent now
        return self._emit(touched, (packet.row, (time.perf_counter() - t_start) * 1e3))

    def _remember_contacts(self, packet: Packet) -> None:
        """A replayed row (resume): its contact frames, as the uninterrupted run saw them before the watermark
        (so a release just after it is solved between the contacts there too)."""
        hands = packet.data.get("window") or {}
        for side in SIDES:
            h, tr = hands.get(side), self._tracks[side]
            if h is None:
                continue
            tr.in_contact = False
            if h.in_contact:
                tr.touch(h, float(packet.frame.time), packet.data.get("object_pose"))

    def flush(self) -> list[Packet]:
        """End of stream: a pending retreat is re-solved, other buffered frames are finalized as they are."""
        touched: set[int] = set()
        for side in SIDES:
            tr = self._tracks[side]
            touched |= self._solve_waiting(side)
            if not tr.frames:
                continue
            if tr.retreat:
                touched |= self._solve_retreat(side)
            else:
                touched |= self._decide_as_is(side, list(tr.frames))
            tr.frames.clear()
            tr.retreat = False
        out = self._emit(touched)
        leftover = sorted(self._rows)  # every row is decided now; none should remain
        for r in leftover:
            self._rows[r].pending.clear()
        return out + self._emit(set(leftover))

    # -- decisions -----------------------------------------------------------------------

    def _trim(self, side: str, now: float) -> set[int]:
        """Decide frames that would wait longer than the buffer allows."""
        tr = self._tracks[side]
        if not tr.frames or now - tr.frames[0].time <= self._horizon:
            return set()
        if tr.onset is not None:  # an approach waiting for its contact to settle: re-solve it now
            return self._solve_waiting(side)
        if tr.retreat:
            touched = self._solve_retreat(side)
            tr.frames.clear()
            tr.retreat = False
            return touched
        old = []
        while tr.frames and now - tr.frames[0].time > self._horizon:
            old.append(tr.frames.popleft())
        tr.since_release = False
        return self._decide_as_is(side, old)

    def _solve_waiting(self, side: str) -> set[int]:
        """Re-solve an approach that waits for its contact to settle (if any), at the latest contact frame's shape."""
        tr = self._tracks[side]
        if tr.onset is None:
            return set()
        return self._solve(side, end=tr.onset, size=tr.last_contact[0])

    def _solve(self, side: str, end: tuple[WindowHand, float, np.ndarray | None], size: WindowHand) -> set[int]:
        """Re-solve the buffered frames backward from ``end``, the first contact frame (both ends fixed after a
        release), at the hand shape of ``size`` (the latest contact frame: the best measure of the hand)."""
        tr = self._tracks[side]
        frames = list(tr.frames)
        tr.frames.clear()
        tr.onset = None
        end = (dataclasses.replace(end[0], betas=np.asarray(size.betas).copy()), end[1], end[2])
        if not self.config.enabled:
            tr.retreat = False
            return self._decide_as_is(side, frames)
        h_end, t_end, obj_end = end
        poses = [f.object_pose if f.object_pose is not None else obj_end for f in frames]
        poses = poses if all(p is not None for p in poses) else None
        t0 = time.perf_counter()
        times = [f.time for f in frames]
        hands = [f.hand for f in frames]
        kept: list[_Frame] = []
        if (tr.retreat or tr.since_release) and tr.released is not None:
            h0, t_0, _ = tr.released
            revised = complete_between(self.models[side], self._K, h0, hands, h_end, np.array([t_0, *times, t_end]),
                                       self.prior, self.grid, poses, self.completion,
                                       neighbours=tr.before_release + tr.after_onset)
            kind = "between"
        else:
            keep = self._keep
            if keep >= len(frames):  # all of them decided with the contact in view: nothing to re-solve
                tr.retreat = tr.since_release = False
                return self._decide_as_is(side, frames, Motion.APPROACH)
            if keep > 0:  # the frames the window decided with the contact in view keep its values
                frames, kept = frames[:-keep], frames[-keep:]
                times, hands = times[:-keep], hands[:-keep]
                poses = poses[:-keep] if poses is not None else None
                h_end = dataclasses.replace(kept[0].hand, betas=np.asarray(size.betas).copy())
                t_end = kept[0].time
                neighbours = [(f.time, f.hand) for f in kept[1:1 + NEIGHBOURS]]
            else:
                neighbours = tr.after_onset
            revised = complete_approach(self.models[side], self._K, hands, h_end, np.array([*times, t_end]),
                                        self.prior, self.grid, poses, self.completion, neighbours=neighbours)
            kind = "approach"
        tr.retreat = tr.since_release = False
        self.solves.append({"side": side, "kind": kind, "frames": len(frames),
                            "ms": (time.perf_counter() - t0) * 1e3})
        return self._apply(side, frames, revised, Motion.APPROACH) | self._decide_as_is(side, kept, Motion.APPROACH)

    def _solve_retreat(self, side: str) -> set[int]:
        tr = self._tracks[side]
        frames = list(tr.frames)
        if not self.config.enabled or tr.last_contact is None:
            return self._decide_as_is(side, frames)
        h0, t_0, obj0 = tr.last_contact
        poses = [f.object_pose if f.object_pose is not None else obj0 for f in frames]
        poses = poses if all(p is not None for p in poses) else None
        t0 = time.perf_counter()
        revised = complete_retreat(self.models[side], self._K, h0, [f.hand for f in frames],
                                   np.array([t_0, *(f.time for f in frames)]), self.prior, self.grid, poses,
                                   self.completion, neighbours=list(tr.recent)[:-1])
        self.solves.append({"side": side, "kind": "retreat", "frames": len(frames),
                            "ms": (time.perf_counter() - t0) * 1e3})
        return self._apply(side, frames, revised, Motion.RETREAT)

    def _decide_as_is(self, side: str, frames: list[_Frame], motion: Motion | None = None) -> set[int]:
        """Mark ``frames`` decided with stage 1's values (and their motion as ``motion``, when given: the approach
        frames just before an onset that ``grasp.keep_frames`` keeps)."""
        touched = set()
        for f in frames:
            r = self._rows.get(f.row)
            if r is not None:
                if motion is not None:
                    self._set(r.packet, side, None, motion)
                r.pending.discard(side)
                touched.add(f.row)
        return touched

    def _apply(self, side: str, frames: list[_Frame], revised: list[RevisedHand], motion: Motion) -> set[int]:
        """Write the revised values into the held rows of ``frames`` and mark the side decided."""
        rows = [self._rows.get(f.row) for f in frames]
        need_vertices = any(r is not None and f"hand/{side}/vertices" in r.packet.fields for r in rows)
        verts = self._vertices(side, revised) if need_vertices else None
        touched = set()
        for i, (f, r, rv) in enumerate(zip(frames, rows, revised)):
            if r is None:
                continue
            self._set(r.packet, side, rv, motion, None if verts is None else verts[i])
            r.pending.discard(side)
            touched.add(f.row)
        return touched

    def _vertices(self, side: str, revised: list[RevisedHand]) -> np.ndarray:
        import torch

        m = self.models[side]

        def stack(name: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([getattr(r, name) for r in revised]), dtype=m.dtype)

        with torch.no_grad():
            out = m(stack("global_orient"), stack("hand_pose"), stack("betas"), stack("transl"), with_vertices=True)
        return out.vertices.numpy()

    @staticmethod
    def _set(packet: Packet, side: str, rv: RevisedHand | None, motion: Motion,
             vertices: np.ndarray | None = None) -> None:
        """Stage 2's fields of one side (and the revised hand values, if any) in a held packet."""
        f = packet.fields
        packet.data.setdefault("grasp", {})[side] = motion
        f[f"hand/{side}/motion"] = np.uint8(motion)
        f[f"hand/{side}/revised"] = np.bool_(rv is not None)
        if rv is None:
            return
        new = {"pose": rv.pose, "betas": rv.betas, "transl": rv.transl, "joints": rv.keypoints}
        if vertices is not None:
            new["vertices"] = vertices
        for name, value in new.items():
            key = f"hand/{side}/{name}"
            old = f.get(key)
            f[key] = np.asarray(value, dtype=old.dtype if isinstance(old, np.ndarray) else np.float32)
        win = packet.data.get("window")
        if isinstance(win, dict) and win.get(side) is not None:  # downstream consumers see the revised hand
            win = dict(win)
            win[side] = dataclasses.replace(win[side], global_orient=rv.global_orient, hand_pose=rv.hand_pose,
                                            betas=rv.betas, transl=rv.transl, keypoints=rv.keypoints)
            packet.data["window"] = win

    # -- emission ----------------------------------------------------------------------

    def _emit(self, touched: set[int], current: tuple[int, float] | None = None) -> list[Packet]:
        """Copies of the touched rows, in row order: final when both sides are decided, else
        provisional; all of one call form one write group. ``current``: (row, ms) of this call."""
        out = []
        for r in sorted(touched):
            row = self._rows.get(r)
            if row is None:
                continue
            final = not row.pending
            p = row.packet
            copy = dataclasses.replace(p, fields=dict(p.fields), data=dict(p.data), timing=dict(p.timing),
                                       status=Status.FINAL if final else Status.PROVISIONAL,
                                       revision=p.revision + row.emitted)
            if current is not None and r == current[0]:
                copy.timing[self.name] = current[1]
            row.emitted += 1
            if final:
                del self._rows[r]
            out.append(copy)
        for i, p in enumerate(out):
            if len(out) > 1:
                p.fields[WRITE_GROUP] = np.int64(len(out) - 1 - i)
        return out

    @property
    def held_rows(self) -> int:
        """Rows not yet final (for tests and the progress display)."""
        return len(self._rows)
