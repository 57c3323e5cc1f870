"""The store writer and reader: watermark, rewrites, eviction, concurrency, schema."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from inscene.engine.config import StoreConfig
from inscene.engine.errors import StoreError
from inscene.engine.frame import Status
from inscene.engine.store import ArraySpec, StoreWriter, open_result

JOINTS = ArraySpec("hand/right/joints", "float32", (21, 3), ("time", "joint", "xyz"), np.nan)
VALID = ArraySpec("hand/right/valid", "bool", (), ("time",), False)


def make(path, chunk=8, **kw):
    return StoreWriter.create(path, [JOINTS, VALID], {"source": {"uri": "test"}},
                              StoreConfig(chunk_frames=chunk, flush_frames=4, **kw), np.eye(3))


def row(i, **extra):
    return {"frames/time": i / 10, "frames/source_index": i, "hand/right/joints": np.full((21, 3), i, np.float32),
            "hand/right/valid": True, **extra}


def test_rows_roundtrip_and_trim(tmp_path):
    w = make(tmp_path / "s.zarr")
    for i in range(21):
        w.put(i, row(i), Status.FINAL, arrival=time.monotonic())
        w.maybe_flush()
    w.close("complete")
    r = open_result(tmp_path / "s.zarr")
    assert r.complete and r.finalized_frames == 21
    np.testing.assert_array_equal(r.array("frames/source_index"), np.arange(21))
    np.testing.assert_array_equal(r.hand("right").joints[:, 0, 0], np.arange(21, dtype=np.float32))
    assert r.hand("right").valid.all()
    assert np.isfinite(r.timing()["latency"]).all()
    np.testing.assert_array_equal(r.K, np.eye(3))
    # a complete store is trimmed to its rows: shapes agree with the watermark
    import zarr
    assert zarr.open_array(str(tmp_path / "s.zarr"), path="hand/right/joints", mode="r").shape == (21, 21, 3)


def test_latency_is_taken_when_a_row_is_written_final_not_when_the_watermark_passes(tmp_path):
    """Glass-to-final is a row's arrival to the flush that writes it final (a live reader sees it final from
    then on), also above the watermark, while an earlier row is still provisional."""
    w = make(tmp_path / "s.zarr")
    t0 = time.monotonic()
    w.put(0, row(0), Status.PROVISIONAL, arrival=t0)
    w.put(1, row(1), Status.FINAL, arrival=t0)
    w.flush()
    first = time.monotonic()
    time.sleep(0.05)
    w.put(0, row(0, **{"frames/revision": 1}), Status.FINAL)
    w.flush()
    w.close("complete")
    lat = open_result(tmp_path / "s.zarr").timing()["latency"]
    assert lat[1] <= (first - t0) * 1e3 + 1.0  # row 1 at the first flush, though the watermark stayed at 0
    assert lat[0] >= 50.0 and lat[0] > lat[1]  # row 0 when its final values were written


def test_root_attributes_written_by_the_writer_read_back_through_zarr(tmp_path):
    """The writer rewrites the root ``zarr.json`` itself (zarr's update_attributes is slow): zarr reads the
    result, with the attributes it set at creation kept."""
    import zarr

    w = make(tmp_path / "s.zarr")
    for i in range(5):
        w.put(i, row(i), Status.FINAL, arrival=time.monotonic())
    w.flush()
    w.set_attrs(note={"a": [1, 2]})
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert g.attrs["finalized_frames"] == 5 and g.attrs["flushed_rows"] == 5 and g.attrs["note"] == {"a": [1, 2]}
    assert g.attrs["source"] == {"uri": "test"} and g.attrs["state"] == "running"
    assert g["hand/right/joints"].shape[1:] == (21, 3)  # the group's members are still found
    w.close("complete")
    assert zarr.open_group(str(tmp_path / "s.zarr"), mode="r").attrs["state"] == "complete"


def test_watermark_stops_at_provisional_rows_and_rewrites_bump_revision(tmp_path):
    w = make(tmp_path / "s.zarr")
    for i in range(12):
        status = Status.PROVISIONAL if 3 <= i < 9 else Status.FINAL
        w.put(i, row(i), status)
    w.flush()
    assert w.watermark == 3
    r = open_result(tmp_path / "s.zarr")
    assert r.finalized_frames == 3 and len(r.time) == 3
    for i in range(3, 9):  # the segment is revised and made final
        w.put(i, row(i, **{"frames/revision": 1, "hand/right/joints": np.zeros((21, 3))}), Status.FINAL)
    w.flush()
    assert w.watermark == 12
    r.refresh()
    assert list(r.revision) == [0, 0, 0] + [1] * 6 + [0, 0, 0]
    assert (r.hand("right").joints[3:9] == 0).all() and (r.hand("right").joints[9:, 0, 0] == np.arange(9, 12)).all()
    with pytest.raises(ValueError, match="watermark"):
        w.put(2, row(2), Status.FINAL)


@pytest.mark.parametrize("level", [3, 0])
def test_chunk_files_are_the_bytes_zarr_writes(tmp_path, level):
    """The writer writes chunk files itself (zarr's per-call overhead was most of a flush): for every dtype
    the schema uses, each file holds what zarr writes for the same rows, with and without compression."""
    import zarr

    specs = [JOINTS, VALID, ArraySpec("hand/right/vertices", "float16", (5, 3), ("time", "v", "xyz"), np.nan),
             ArraySpec("hand/right/track", "int64", (), ("time",), -1),
             ArraySpec("frames/flags", "uint8", (), ("time",), 0),
             ArraySpec("object/T", "float64", (4, 4), ("time", "r", "c"), np.nan)]
    rng = np.random.default_rng(0)
    rows = [{"frames/time": i / 10, "frames/source_index": i, "hand/right/joints": rng.normal(size=(21, 3)),
             "hand/right/valid": bool(i % 3), "hand/right/vertices": rng.normal(size=(5, 3)),
             "hand/right/track": i * 7 - 3, "frames/flags": i % 5, "object/T": rng.normal(size=(4, 4))}
            for i in range(13)]
    w = StoreWriter.create(tmp_path / "s.zarr", specs, {}, StoreConfig(chunk_frames=8, compression_level=level),
                           np.eye(3))
    assert all(buf.encode is not None for buf in w._arrays.values())
    for i, r in enumerate(rows):
        w.put(i, r, Status.FINAL)
    w.flush()
    w.close("interrupted")  # keeps the full chunks' capacity, as zarr's copy below has
    twin = zarr.open_group(str(tmp_path / "twin.zarr"), mode="w")
    res = open_result(tmp_path / "s.zarr")
    compared = 0
    for name in w._arrays:
        mine = zarr.open_array(str(tmp_path / "s.zarr"), path=name, mode="r")
        copy = twin.create_array(name, shape=mine.shape, chunks=mine.chunks, dtype=mine.dtype,
                                 fill_value=mine.fill_value, compressors=mine.compressors)
        copy[...] = mine[...]
        for c in range(2):  # zarr writes no file for a chunk of fill values only; a reader sees fill either way
            key = "/".join(["c", str(c)] + ["0"] * (mine.ndim - 1))
            if (tmp_path / "twin.zarr" / name / key).exists():
                compared += 1
                assert (tmp_path / "s.zarr" / name / key).read_bytes() == (tmp_path / "twin.zarr" / name / key).read_bytes()
    assert compared >= 2 * len(specs)
    np.testing.assert_array_equal(res.array("hand/right/track"), [r["hand/right/track"] for r in rows])
    np.testing.assert_array_equal(res.array("object/T"), np.stack([r["object/T"] for r in rows]))
    np.testing.assert_array_equal(res.array("hand/right/vertices"),
                                  np.stack([r["hand/right/vertices"] for r in rows]).astype(np.float16))


def test_memory_holds_only_open_chunks(tmp_path):
    w = make(tmp_path / "s.zarr", chunk=8)
    for i in range(200):
        w.put(i, row(i), Status.FINAL)
        w.maybe_flush()
    w.flush()
    assert all(len(b.chunks) <= 1 for b in w._arrays.values())
    w.close("complete")


def test_resume_keeps_rows_below_watermark(tmp_path):
    p = tmp_path / "s.zarr"
    w = make(p)
    for i in range(13):
        w.put(i, row(i), Status.FINAL)
    w.put(13, row(13), Status.PROVISIONAL)
    w.flush()
    del w  # crash: no close
    w = StoreWriter.resume(p, StoreConfig(chunk_frames=8, flush_frames=4))
    assert w.watermark == 13
    for i in range(13, 20):
        w.put(i, row(i), Status.FINAL)
    w.close("complete")
    r = open_result(p)
    np.testing.assert_array_equal(r.array("frames/source_index"), np.arange(20))
    np.testing.assert_array_equal(r.hand("right").joints[:, 5, 1], np.arange(20, dtype=np.float32))


def test_concurrent_reader_never_sees_unfinalized_rows(tmp_path):
    p = tmp_path / "s.zarr"
    w = make(p, chunk=16)
    n = 400
    done = threading.Event()
    problems: list[str] = []
    seen = []

    def reader():
        r = open_result(p)
        while not done.is_set():
            wm = r.refresh()
            t = r.array("frames/time")
            st = r.status
            idx = r.array("frames/source_index")
            if len(t) > wm or len(st) > wm:
                problems.append(f"read {len(t)} rows above watermark {wm}")
            k = min(len(t), len(st), len(idx))
            if not (np.isfinite(t[:k]).all() and (st[:k] == 2).all() and (idx[:k] == np.arange(k)).all()):
                problems.append(f"fill or wrong rows below watermark {wm}")
            seen.append(wm)

    th = threading.Thread(target=reader)
    th.start()
    for i in range(n):
        w.put(i, row(i), Status.FINAL)
        w.maybe_flush()
        if i % 50 == 0:
            time.sleep(0.01)
    w.close("complete")
    done.set()
    th.join()
    assert not problems, problems[:3]
    assert len(set(seen)) > 3  # the reader really watched the store grow


def test_other_schema_version_and_non_store(tmp_path):
    p = tmp_path / "s.zarr"
    make(p).close("complete")
    meta = json.loads((p / "zarr.json").read_text())
    meta["attributes"]["schema_version"] = 99
    (p / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="schema version 99"):
        open_result(p)
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a Zarr"):
        open_result(tmp_path / "plain")
    with pytest.raises(StoreError, match="already exists"):
        make(p)


def test_xarray_opens_the_store_with_named_dimensions(tmp_path):
    xr = pytest.importorskip("xarray")
    p = tmp_path / "s.zarr"
    w = make(p)
    for i in range(10):
        w.put(i, row(i), Status.FINAL)
    w.close("complete")
    ds = xr.open_zarr(p, group="hand/right", consolidated=False)
    assert ds["joints"].dims == ("time", "joint", "xyz") and ds.sizes["time"] == 10
    frames = xr.open_zarr(p, group="frames", consolidated=False)
    assert float(frames["time"][3]) == pytest.approx(0.3)
