"""Running a stage in a worker process of its own.

The pipeline runs every stage in a thread of one process. Stages whose work is
many small torch and numpy operations in Python (the per-frame hand fit, the
window) hold the interpreter lock most of the time, so two of them in one
process take turns instead of sharing the two cores. :class:`WorkerStage` runs
such a stage in a child process instead: its thread in the pipeline sends each
packet over a pipe and waits for the packets the stage lets go (the wait
releases the lock), while the child does the work with an interpreter of its
own.

The child builds its own copy of the stage from a picklable factory (a class or
function and its arguments); the parent keeps a copy too, for the schema the
pipeline checks before the first frame (name, inputs, outputs, store fields,
history). The stage's hooks keep their meaning: ``setup``, ``process``,
``tick``, ``flush`` and ``close`` run in the child, in that order, and their
results come back. Images do not cross the pipe (a stage that reads
``packet.frame.image`` cannot run in a worker; those that can say so with
``needs_image = False``): the packet travels without its pixels and gets its
frame back when the stage lets it go. An exception in the child comes back with
its traceback and is raised in the parent's stage thread, where the pipeline
reports it like any stage error; a child that dies is reported the same way.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .errors import InsceneError
from .frame import Packet, without_image
from .stage import RunContext, Stage, use_stage_threads
from .store.schema import ArraySpec

START_TIMEOUT_S = 600.0
"""Longest wait for the child to build its stage and set it up (a first model build is slow)."""


class WorkerError(RuntimeError):
    """An exception raised in a worker process, with the child's traceback in its message."""


class WorkerStage(Stage):
    """``proto``'s stage run in a child process (built there by ``factory(*args)``)."""

    def __init__(self, proto: Stage, factory: Callable[..., Stage], *args: Any) -> None:
        if getattr(proto, "needs_image", True):
            raise ValueError(f"stage '{proto.name}' reads the image; it cannot run in a worker process")
        self.proto = proto
        self.name = proto.name  # type: ignore[misc]
        self.consumes = proto.consumes  # type: ignore[misc]
        self.produces = proto.produces  # type: ignore[misc]
        self.history = proto.history
        self.timed = proto.timed
        self.input_queue = proto.input_queue
        self._factory = factory
        self._args = args
        self._proc: Any = None
        self._conn: Any = None
        self._sent: dict[int, Packet] = {}

    def fields(self) -> list[ArraySpec]:
        return self.proto.fields()

    def static_fields(self) -> dict[str, np.ndarray]:
        return self.proto.static_fields()

    # -- hooks ---------------------------------------------------------------------

    def setup(self, ctx: RunContext) -> None:
        # A fresh interpreter (``python -m inscene.engine.worker FD``), not multiprocessing: no fork
        # (the parent runs threads and torch), and unlike spawn it does not re-import the caller's
        # main script, so a script that runs a job without an ``if __name__ == "__main__"`` guard works.
        mine, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "inscene.engine.worker", str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        blob = pickle.dumps((self._factory, self._args), protocol=pickle.HIGHEST_PROTOCOL)
        self._call("start", (list(sys.path), blob), timeout=START_TIMEOUT_S)
        self._call("setup", ctx, timeout=START_TIMEOUT_S)

    def process(self, packet: Packet) -> list[Packet]:
        self._sent[packet.row] = packet
        return self._restore(self._call("process", without_image(packet)))

    def tick(self) -> list[Packet]:
        if type(self.proto).tick is Stage.tick:  # nothing time-based: no round trip every idle 20 ms
            return []
        return self._restore(self._call("tick"))

    def flush(self) -> list[Packet]:
        return self._restore(self._call("flush"))

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.poll() is None:
                self._call("close", timeout=60.0)
        except WorkerError:
            if self._proc.poll() is None:
                raise  # a child that died was reported when it happened
        finally:
            self._conn.close()
            try:
                self._proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    # -- the pipe ------------------------------------------------------------------

    def _call(self, op: str, arg: Any = None, timeout: float | None = None) -> Any:
        if self._proc is None:
            raise WorkerError(f"stage '{self.name}': its worker process is not running")
        try:
            self._conn.send_bytes(dumps((op, arg)))
            if timeout is not None and not self._conn.poll(timeout):
                raise WorkerError(f"stage '{self.name}': its worker process did not answer '{op}' "
                                  f"within {timeout:.0f} s")
            ok, value = pickle.loads(self._conn.recv_bytes())
        except (EOFError, BrokenPipeError, ConnectionResetError):
            try:
                code = self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                code = None
            raise WorkerError(f"stage '{self.name}': its worker process ended unexpectedly "
                              f"(exit code {code})") from None
        if not ok:
            raise value
        return value

    def _restore(self, packets: list[Packet]) -> list[Packet]:
        """The packets the child let go, as the parent's own packets (frame, and the times the
        pipeline recorded meanwhile) carrying the child's products."""
        out = []
        for p in packets:
            mine = self._sent.pop(p.row, None)
            if mine is None:  # a row let go a second time (a revision): it keeps the frame without pixels
                out.append(p)
                continue
            mine.data, mine.fields, mine.status, mine.revision = p.data, p.fields, p.status, p.revision
            for k, v in p.timing.items():
                mine.timing.setdefault(k, v)
            out.append(mine)
        return out


def _serve(conn: Any) -> None:
    """The child's loop: take the parent's import path and the stage's factory, build the stage at
    ``setup``, then answer one request at a time until ``close``.

    Ctrl-C reaches the whole process group: the child ignores SIGINT and SIGTERM, the parent
    decides (it lets every frame read go through, then closes the child); a parent that dies
    closes the pipe, and the child ends.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stage: Stage | None = None
    factory: Callable[..., Stage] | None = None
    args: tuple = ()
    while True:
        try:
            op, arg = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent went away
        try:
            if op == "start":
                path, blob = arg  # the factory is unpickled once the parent's import path is in place
                sys.path[:] = path + [p for p in sys.path if p not in path]
                factory, args = pickle.loads(blob)
                value: Any = None
            elif op == "setup":
                stage = factory(*args)
                use_stage_threads(arg.config)
                stage.setup(arg)
                value = None
            elif op == "process":
                value = stage.process(arg)
            elif op == "tick":
                value = stage.tick()
            elif op == "flush":
                value = stage.flush()
            elif op == "close":
                if stage is not None:
                    stage.close()
                conn.send_bytes(pickle.dumps((True, None)))
                _exit_now()
            else:
                raise ValueError(f"unknown worker request '{op}'")
            reply = dumps((True, value))
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
            reply = pickle.dumps((False, _portable(e)), protocol=pickle.HIGHEST_PROTOCOL)
        conn.send_bytes(reply)


class _Pickler(pickle.Pickler):
    """Pickles a plain CPU tensor as the numpy array it views: torch's own pickling of a tensor goes through
    its serialization format (~0.1 ms per tensor each way; a fitted hand carries a dozen), a numpy array is
    its bytes. The tensor comes back as ``torch.from_numpy`` of the copy. Other tensors (autograd, other
    devices, dtypes numpy lacks) take torch's way."""

    def reducer_override(self, obj: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is None or type(obj) is not torch.Tensor or obj.requires_grad or obj.device.type != "cpu":
            return NotImplemented
        try:
            array = obj.numpy()
        except (TypeError, RuntimeError):  # bfloat16, conjugate / negative views, sparse layouts
            return NotImplemented
        return torch.from_numpy, (array,)


def dumps(obj: Any) -> bytes:
    """``obj`` pickled for the pipe between the pipeline and a worker (tensors as numpy arrays)."""
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _exit_now() -> None:
    """End the child at once: its stage is closed and its results are with the parent, so the interpreter's
    teardown (torch's and numba's modules, ~1 s) is skipped; the parent is waiting on the exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _portable(e: BaseException) -> BaseException:
    """``e`` if it survives pickling (input errors keep their one-line message), else a WorkerError
    carrying its type, message and the child's traceback."""
    if isinstance(e, InsceneError):
        try:
            pickle.loads(pickle.dumps(e))
            return e
        except Exception:  # noqa: BLE001
            pass
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()
    return WorkerError(f"{type(e).__name__}: {e}\n--- in the worker process:\n{text}")


if __name__ == "__main__":  # the child: python -m inscene.engine.worker FD
    # served by the imported module, not this __main__ copy: what it pickles must name inscene.engine.worker
    from inscene.engine.worker import _serve as serve

    serve(Connection(int(sys.argv[1])))
