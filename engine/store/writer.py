"""The store writer: rows in, chunks out, a watermark that readers can trust.

Rows are kept in per-chunk buffers in memory and written as whole chunks (no
read-modify-write). Arrays grow along time in whole chunks ahead of the data, so a
reader that looks at an array's shape sees rows of fill values: readers must use
the ``finalized_frames`` watermark instead. The watermark is the length of the
longest prefix of rows that are final *and* flushed; it is written into the root
attributes only after every chunk below it has been written. Chunks entirely
below the watermark leave memory, so memory stays flat over hours of video.

Provisional rows and rewrites (stage 2): rows may be written provisional (status
1) and rewritten later. ``attrs.flushed_rows`` is the number of leading rows that
have been flushed in any status; readers of provisional rows read below it. A
flush that rewrites rows already published (below ``flushed_rows``) is fenced by a
sequence number (a seqlock): ``attrs.write_seq`` is made odd before the chunks are
written and even after, so a reader that sees the same even number before and
after its reads knows it saw no partial rewrite (``Result.latest``). A producer
that rewrites a segment of rows puts them as one *write group* (``WRITE_GROUP``):
no flush happens until the group's last row is in, so the watermark moves over a
whole segment at once and a reader never sees it half rewritten.

Chunk files are written by the writer itself (:func:`_chunk_encoder`): the bytes zarr
would write for the codecs the store uses (little-endian bytes, then zstd), to the
path zarr would read, without zarr's per-call overhead (~1.3 ms per array even for
a scalar per frame: a flush of the ~60 arrays cost ~80 ms of CPU, a tenth of a
frame's whole budget at 30 frames/s; now ~5 ms). Arrays with other codecs go
through zarr. Metadata (resizes, attributes) always goes through zarr.

Crash safety: chunk files and metadata are replaced atomically (write to a
temporary file, then rename), so a killed process leaves either the old or the
new version of each file. ``StoreWriter.resume`` reopens such a
store, keeps rows below the watermark and rewrites everything above it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from ..config import StoreConfig
from ..errors import StoreError
from ..frame import Status
from .schema import K_SPEC, SCHEMA_VERSION, ArraySpec, core_specs

WRITE_GROUP = "_write_group_left"
"""Reserved key of ``put``'s values (never stored): rows of the same write group still to
come after this one. The writer does not flush on its own while a group is open."""


@dataclass
class _Buffered:
    """One array's open chunks: chunk index -> rows ``(chunk, *shape)``."""

    spec: ArraySpec
    array: Any
    chunks: dict[int, np.ndarray] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    encode: Callable[[np.ndarray], bytes] | None = None
    """A chunk's file contents (None: write through zarr)."""


def _chunk_encoder(array: Any) -> Callable[[np.ndarray], bytes] | None:
    """The bytes zarr stores for a chunk of ``array``, when its codecs are the ones :meth:`StoreWriter.create`
    uses -- ``bytes`` (little-endian) alone or followed by ``zstd`` without checksum -- and its chunk keys
    zarr's default ``c/i/j/...``; else None. (``tests/test_store.py`` checks the files against zarr's.)"""
    import numcodecs

    meta = array.metadata
    try:
        codecs = [c.to_dict() for c in meta.codecs]
        keys = meta.chunk_key_encoding.to_dict()
    except AttributeError:  # not a zarr v3 array
        return None
    if keys != {"name": "default", "configuration": {"separator": "/"}} or not codecs:
        return None
    dtype = np.dtype(array.dtype)
    little = {"name": "bytes", "configuration": {"endian": "little"}}
    if codecs[0] != little and not (dtype.itemsize == 1 and codecs[0] == {"name": "bytes"}):
        return None
    dtype = dtype.newbyteorder("<")
    if len(codecs) == 1:
        return lambda rows: np.ascontiguousarray(rows, dtype).tobytes()
    cfg = codecs[1].get("configuration", {})
    if len(codecs) == 2 and codecs[1]["name"] == "zstd" and not cfg.get("checksum", False):
        zstd = numcodecs.Zstd(level=int(cfg.get("level", 0)))
        return lambda rows: zstd.encode(np.ascontiguousarray(rows, dtype).tobytes())
    return None


class StoreWriter:
    """Writes rows of per-frame arrays into a Zarr v3 store on local disk.

    Use :meth:`create` for a new store and :meth:`resume` to continue one; then
    :meth:`put` rows (any order, rows may be rewritten while above the watermark),
    :meth:`maybe_flush` / :meth:`flush`, and :meth:`close` with the run's outcome.
    """

    def __init__(self, path: Path, root: Any, specs: list[ArraySpec], cfg: StoreConfig, watermark: int) -> None:
        self.path = path
        self.cfg = cfg
        self._root = root
        self._meta = json.loads((path / "zarr.json").read_text())
        """The root group's metadata document (its attributes are updated here, :meth:`_set_root_attrs`)."""
        self._chunk = cfg.chunk_frames
        self._arrays = {s.path: _Buffered(s, root[s.path]) for s in specs if s.per_frame}
        for buf in self._arrays.values():
            buf.encode = _chunk_encoder(buf.array)
        self.watermark = watermark
        self.rows = watermark  # one past the highest row put so far
        self._capacity = int(root["frames/status"].shape[0])
        self._status: dict[int, int] = {}  # status of rows >= watermark
        self._arrival: dict[int, float] = {}
        self._final_rows: set[int] = set()  # rows put final since the last flush (their latency is its time)
        self._pending = 0
        self._group_open = False
        self._published = int(root.attrs.get("flushed_rows", watermark))  # rows provisional readers may read
        self._seq = int(root.attrs.get("write_seq", 0))
        self._seq += self._seq % 2  # a writer killed inside a fenced flush left it odd
        self._rewrites = False  # a row below _published was put since the last flush
        self._last_flush = time.monotonic()
        self.flush_seconds = 0.0  # total time spent in flush(), for benchmarks
        self.flushes = 0
        if watermark % self._chunk:
            self._load_chunk(watermark // self._chunk)

    # -- opening ----------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, specs: Iterable[ArraySpec], attrs: dict[str, Any], cfg: StoreConfig,
               K: np.ndarray, static: dict[str, np.ndarray] | None = None, overwrite: bool = False) -> StoreWriter:
        """Create a new store (``overwrite`` replaces an existing one)."""
        p = Path(path)
        if p.exists():
            if not overwrite:
                raise StoreError(str(p), "output already exists", "pass --resume to continue it or --overwrite to replace it")
            if p.is_dir() and not (p / "zarr.json").exists() and any(p.iterdir()):
                raise StoreError(str(p), "exists and is not an inscene store; refusing to overwrite it",
                                 "choose another output path")
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        specs = _with_core(specs)
        try:
            root = zarr.open_group(store=str(p), mode="w-", zarr_format=3)
        except (OSError, zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError) as e:
            raise StoreError(str(p), f"cannot create the store: {e}") from None
        compressors = [ZstdCodec(level=cfg.compression_level)] if cfg.compression_level > 0 else None
        for s in [*specs, K_SPEC, *(_static_spec(k, v) for k, v in (static or {}).items())]:
            _require_parent(root, s.path)
            shape = (0, *s.shape) if s.per_frame else s.shape
            chunks = (cfg.chunk_frames, *s.shape) if s.per_frame else s.shape
            root.create_array(s.path, shape=shape, chunks=chunks or (1,), dtype=s.dtype, fill_value=s.fill,
                              compressors=compressors, dimension_names=s.dims,
                              attributes={"doc": s.doc} if s.doc else None)
        root["camera/K"][...] = np.asarray(K, dtype=np.float64)
        for k, v in (static or {}).items():
            root[k][...] = v
        now = datetime.now(UTC).isoformat(timespec="seconds")
        root.update_attributes({**attrs, "schema_version": SCHEMA_VERSION, "created": now, "finalized_frames": 0,
                                 "flushed_rows": 0, "write_seq": 0, "state": "running",
                                 "per_frame_arrays": [s.path for s in specs]})
        return cls(p, root, specs, cfg, watermark=0)

    @classmethod
    def resume(cls, path: str | Path, cfg: StoreConfig) -> StoreWriter:
        """Reopen a store written by an interrupted run; rows below the watermark are kept."""
        p = Path(path)
        attrs = read_root_attrs(p)
        root = zarr.open_group(store=str(p), mode="r+", zarr_format=3)
        specs = [_spec_of(root[name], name) for name in attrs.get("per_frame_arrays", [])]
        chunk = int(root["frames/status"].chunks[0])
        if chunk != cfg.chunk_frames:
            raise StoreError(str(p), f"store was written with chunk_frames={chunk}, config asks {cfg.chunk_frames}",
                             "resume with the original config")
        wm = int(attrs["finalized_frames"])
        seq = int(attrs.get("write_seq", 0))
        # rows above the watermark are redone: readers of provisional rows start again from it
        root.update_attributes({"state": "running", "flushed_rows": wm, "write_seq": seq + 2 - seq % 2})
        return cls(p, root, specs, cfg, watermark=wm)

    # -- rows ---------------------------------------------------------------------

    def put(self, row: int, values: dict[str, Any], status: Status, arrival: float | None = None) -> None:
        """Buffer one row. ``values`` maps store paths to per-frame values; paths
        not given keep what the row held (fill for a new row). Rows below the
        watermark are final and cannot be rewritten. ``values`` may carry
        ``WRITE_GROUP`` (see there)."""
        if row < self.watermark:
            raise ValueError(f"row {row} is below the watermark {self.watermark} and is final")
        if WRITE_GROUP in values:
            values = dict(values)
            self._group_open = int(values.pop(WRITE_GROUP)) > 0
        else:
            self._group_open = False
        unknown = set(values) - self._arrays.keys()
        if unknown:
            raise KeyError(f"fields not declared in the store: {sorted(unknown)}")
        c, r = divmod(row, self._chunk)
        for path, value in values.items():
            buf = self._arrays[path]
            self._chunk_rows(buf, c)[r] = value
            buf.dirty.add(c)
        st = self._arrays["frames/status"]
        self._chunk_rows(st, c)[r] = int(status)
        st.dirty.add(c)
        self._status[row] = int(status)
        if arrival is not None:
            self._arrival[row] = arrival
        if status == Status.FINAL and row in self._arrival:
            self._final_rows.add(row)
        if row < self._published:
            self._rewrites = True
        self.rows = max(self.rows, row + 1)
        self._pending += 1

    def maybe_flush(self) -> bool:
        """Flush when enough rows are pending or the flush interval has passed (never inside
        an open write group)."""
        if not self._pending or self._group_open:
            return False
        if self._pending >= self.cfg.flush_frames or time.monotonic() - self._last_flush >= self.cfg.flush_interval_s:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Write every dirty chunk, then advance the watermark over the final prefix and publish
        the flushed rows (fenced by ``write_seq`` when published rows are rewritten)."""
        t0 = time.monotonic()
        new_wm = self.watermark
        while self._status.get(new_wm) == Status.FINAL:
            new_wm += 1
        if self._final_rows and "timing/latency" in self._arrays:
            # a row's final write is this flush (a live reader sees it final from now on; the watermark, the
            # final prefix, may pass it later, when earlier rows still wait provisional in stage 2's buffer)
            lat = self._arrays["timing/latency"]
            for row in self._final_rows:
                c, r = divmod(row, self._chunk)
                self._chunk_rows(lat, c)[r] = (t0 - self._arrival[row]) * 1e3
                lat.dirty.add(c)
        self._final_rows.clear()
        need = -(-self.rows // self._chunk) * self._chunk
        if need > self._capacity:
            for buf in self._arrays.values():
                buf.array.resize((need, *buf.spec.shape))
            self._capacity = need
        fenced = self._rewrites
        if fenced:
            self._seq += 1  # odd: a rewrite of published rows is under way
            self._set_root_attrs({"write_seq": self._seq})
        written: list[Path] = []
        for name, buf in self._arrays.items():
            for c in sorted(buf.dirty):
                file = self.path / name / "c" / "/".join([str(c)] + ["0"] * len(buf.spec.shape))
                if buf.encode is None:
                    buf.array[c * self._chunk:(c + 1) * self._chunk] = buf.chunks[c]
                else:
                    _replace_file(file, buf.encode(buf.chunks[c]))
                if self.cfg.fsync:
                    written.append(file)
            buf.dirty.clear()
        if written:
            _fsync_files(written)
        update: dict[str, int] = {}
        if fenced:
            self._seq += 1
            update["write_seq"] = self._seq
            self._rewrites = False
        if self.rows > self._published:
            self._published = self.rows
            update["flushed_rows"] = self.rows
        if new_wm > self.watermark:
            update["finalized_frames"] = new_wm
        if update:  # one metadata write: attrs.update() would write each key in turn
            self._set_root_attrs(update)
        if new_wm > self.watermark:
            for row in range(self.watermark, new_wm):
                self._status.pop(row, None)
                self._arrival.pop(row, None)
            self.watermark = new_wm
            done = new_wm // self._chunk
            for buf in self._arrays.values():
                for c in [c for c in buf.chunks if c < done]:
                    del buf.chunks[c]
        self._pending = 0
        self._last_flush = time.monotonic()
        self.flush_seconds += self._last_flush - t0
        self.flushes += 1

    def has(self, path: str) -> bool:
        """True when the store has the per-frame array ``path``."""
        return path in self._arrays

    def set_attrs(self, **attrs: Any) -> None:
        self._set_root_attrs(attrs)

    def close(self, state: str, **attrs: Any) -> None:
        """Flush and record the run's outcome. ``state`` is ``"complete"``,
        ``"interrupted"`` or ``"failed"``. A complete store is trimmed to its
        rows; others keep their capacity so that ``resume`` can continue."""
        self.flush()
        if state == "complete" and self.watermark == self.rows:
            for buf in self._arrays.values():
                buf.array.resize((self.rows, *buf.spec.shape))
            self._capacity = self.rows
        self._set_root_attrs({**attrs, "state": state, "rows": self.rows})

    # -- internals -------------------------------------------------------------

    def _set_root_attrs(self, update: dict[str, Any]) -> None:
        """Update the root group's attributes: its ``zarr.json`` rewritten from the document held since opening
        (atomic replace, as zarr writes it). zarr's own ``update_attributes`` costs ~2 ms of interpreter time
        (its event loop, re-encoding) and a flush makes one to three: this writer is the only one writing."""
        self._meta["attributes"].update(update)
        text = json.dumps(self._meta, indent=zarr.config.get("json_indent"), allow_nan=True)
        _replace_file(self.path / "zarr.json", text.encode())

    def _chunk_rows(self, buf: _Buffered, c: int) -> np.ndarray:
        rows = buf.chunks.get(c)
        if rows is None:
            rows = buf.chunks[c] = buf.spec.empty_rows(self._chunk)
        return rows

    def _load_chunk(self, c: int) -> None:
        """Bring the chunk holding the watermark back into memory on resume: rows
        below the watermark keep their values, rows above are reset to fill."""
        keep = self.watermark - c * self._chunk
        for buf in self._arrays.values():
            rows = buf.spec.empty_rows(self._chunk)
            rows[:keep] = buf.array[c * self._chunk:self.watermark]
            buf.chunks[c] = rows
            buf.dirty.add(c)


def read_root_attrs(path: str | Path) -> dict[str, Any]:
    """The root attributes, read fresh from disk, validated as an inscene store."""
    p = Path(path)
    meta = p / "zarr.json"
    if not p.exists():
        raise StoreError(str(p), "no such store", "check the path")
    if not meta.is_file():
        raise StoreError(str(p), "not a Zarr v3 store (no zarr.json)", "point at a store written by 'inscene run'")
    for attempt in range(20):
        try:
            doc = json.loads(meta.read_text())
            break
        except json.JSONDecodeError:  # replaced under us by a writer on a non-atomic filesystem
            if attempt == 19:
                raise StoreError(str(p), "zarr.json is not valid JSON", "the store is damaged") from None
            time.sleep(0.01)
        except OSError as e:
            raise StoreError(str(p), f"cannot read the store: {e}") from None
    attrs = doc.get("attributes") or {}
    version = attrs.get("schema_version")
    if version is None or "finalized_frames" not in attrs:
        raise StoreError(str(p), "not an inscene result store", "point at a store written by 'inscene run'")
    if version != SCHEMA_VERSION:
        raise StoreError(str(p), f"store has schema version {version}, this inscene reads version {SCHEMA_VERSION}",
                         "use the inscene version that wrote it, or re-run into a new store")
    return attrs


def _with_core(specs: Iterable[ArraySpec]) -> list[ArraySpec]:
    out: dict[str, ArraySpec] = {s.path: s for s in core_specs()}
    for s in specs:
        if s.path in out and out[s.path] != s:
            raise ValueError(f"store field {s.path} declared twice with different specs")
        out[s.path] = s
    return list(out.values())


def _static_spec(path: str, value: np.ndarray) -> ArraySpec:
    value = np.asarray(value)
    dims = tuple(f"{path.rsplit('/', 1)[-1]}_{i}" for i in range(value.ndim))
    return ArraySpec(path, value.dtype.name, value.shape, dims, 0, per_frame=False)


def _spec_of(arr: Any, path: str) -> ArraySpec:
    meta = arr.metadata
    dims = tuple(meta.dimension_names or ())
    fill = np.asarray(arr.fill_value).item()
    return ArraySpec(path, arr.dtype.name if hasattr(arr.dtype, "name") else str(arr.dtype),
                     tuple(arr.shape[1:]), dims, fill, per_frame=True, doc=arr.attrs.get("doc", ""))


def _require_parent(root: Any, path: str) -> None:
    parts = path.split("/")[:-1]
    g = root
    for part in parts:
        g = g.require_group(part)


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it onto ``path`` (atomic)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fh = open(tmp, "wb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(tmp, "wb")
    with fh:
        fh.write(data)
    os.replace(tmp, path)


def _fsync_files(paths: list[Path]) -> None:
    for f in paths:
        try:
            fd = os.open(f, os.O_RDONLY)
        except FileNotFoundError:  # an all-fill chunk is not written by zarr
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
