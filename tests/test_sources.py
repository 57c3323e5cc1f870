"""Frame sources: files, folders, generator, streams (local only), bad input.

Every video here is written by PyAV inside the test; frame ``i`` is a flat gray
image of level ``8 + 5 i``, so a decoded frame tells which frame it is. No
network traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import wave
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest

from inscene.engine.config import SourceConfig
from inscene.engine.errors import SourceError
from inscene.engine.sources import (
    FolderSource,
    GeneratorSource,
    StreamSource,
    VideoFileSource,
    WebcamSource,
    open_source,
    read_index,
)
from inscene.engine.sources import _common
from inscene.engine.sources.folder import natural_key

N = 48
W, H = 64, 48
COFFEE = Path(__file__).resolve().parents[1].parent / "shared/data/clips/04_coffee.mp4"


def level(i: int) -> int:
    return 8 + 5 * i


def write_video(path: Path, *, n: int = N, rate: Fraction = Fraction(30), codec: str = "libx264",
                preset: str = "ultrafast", gop: int = 12, options: dict[str, str] | None = None) -> Path:
    """Write ``n`` flat gray frames (frame i at level(i), pts i / rate)."""
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.bit_rate = 4_000_000  # near-lossless at this size: gray levels survive
        if codec == "libx264":
            stream.options = {"preset": preset}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), level(i), np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def which(image: np.ndarray) -> int:
    """Index of the gray level closest to the image's mean."""
    return int(round((float(image.mean()) - 8) / 5))


def collect(source, limit: int | None = None) -> list:
    out = []
    with source:
        for f in source.frames():
            out.append(f)
            if limit is not None and len(out) >= limit:
                break
    return out


def raises_one_line(fn, *names: str) -> SourceError:
    """Run ``fn``; it must raise SourceError whose single-line message names ``names``."""
    with pytest.raises(SourceError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for name in names:
        assert name in msg, msg
    return info.value


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "h264": write_video(d / "h264.mp4"),
        "ntsc": write_video(d / "ntsc.mp4", rate=Fraction(30000, 1001), codec="mpeg4"),
        "bframes": write_video(d / "bframes.mp4", preset="medium", options={"movflags": "faststart"}),
        "mkv": write_video(d / "clip.mkv", preset="medium"),
    }


# -- video files ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["h264", "ntsc", "bframes", "mkv"])
def test_video_decodes_frame_exact(videos, name):
    rate = Fraction(30000, 1001) if name == "ntsc" else Fraction(30)
    src = VideoFileSource(str(videos[name]))
    frames = collect(src)
    assert (src.info.width, src.info.height, src.info.kind, src.info.live) == (W, H, "file", False)
    assert src.info.fps == pytest.approx(float(rate))
    assert src.info.n_frames in (N, None)  # mkv does not announce a count
    assert [f.index for f in frames] == list(range(N))
    tol = 1e-3 if name == "mkv" else 1e-9  # matroska stores milliseconds
    assert [f.time for f in frames] == pytest.approx([float(i / rate) for i in range(N)], abs=tol)
    assert [which(f.image) for f in frames] == list(range(N))
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("name", ["h264", "ntsc", "bframes", "mkv"])
@pytest.mark.parametrize("start,end,stride", [(0, None, 3), (5, 20, 1), (13, 40, 4), (30, None, 2), (47, None, 1)])
def test_video_selection_frame_exact(videos, name, start, end, stride):
    full = collect(VideoFileSource(str(videos[name])))
    cfg = SourceConfig(start=start, end=end, stride=stride)
    src = VideoFileSource(str(videos[name]), cfg)
    got = collect(src)
    want = full[start:end:stride]
    assert src.info.n_frames in (len(want), None)
    assert [(f.index, f.time) for f in got] == [(f.index, f.time) for f in want]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, want))


@pytest.mark.parametrize("name", ["h264", "bframes", "mkv"])
def test_video_large_start_seeks(videos, name):
    src = VideoFileSource(str(videos[name]), SourceConfig(start=40))
    got = collect(src)
    assert src.seeked and src.decoded < N  # did not decode from frame 0
    assert [f.index for f in got] == list(range(40, N))
    full = collect(VideoFileSource(str(videos[name])))
    assert [f.time for f in got] == [f.time for f in full[40:]]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, full[40:]))


def test_coffee_clip():
    if not COFFEE.exists():
        pytest.skip(f"sample clip {COFFEE} is not present")
    full = collect(VideoFileSource(str(COFFEE)))
    assert len(full) == 287 and full[0].image.shape == (720, 1280, 3)
    assert full[-1].time == pytest.approx(286 * 1001 / 30000)
    src = VideoFileSource(str(COFFEE), SourceConfig(start=250, stride=5))
    got = collect(src)
    assert src.seeked and src.decoded < 100
    assert [(f.index, f.time) for f in got] == [(f.index, f.time) for f in full[250::5]]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, full[250::5]))


# -- image folders ---------------------------------------------------------------

def write_image(path: Path, value: int, size: tuple[int, int] = (W, H)) -> None:
    codec = {".png": "png", ".bmp": "bmp", ".jpg": "mjpeg", ".webp": "libwebp"}[path.suffix.lower()]
    pix = {"png": "rgb24", "bmp": "bgr24", "mjpeg": "yuvj420p", "libwebp": "yuv420p"}[codec]
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], pix
        image = np.full((size[1], size[0], 3), value, np.uint8)
        out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix)))
        out.mux(stream.encode())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("images")
    order = np.random.default_rng(0).permutation(12)  # creation order must not matter
    for i in order:
        write_image(d / f"img{i + 1}.png", level(i))
    (d / "notes.txt").write_text("not an image")
    return d


def test_natural_key():
    names = ["img10.png", "img2.png", "IMG1.png", "img1b.png", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "IMG1.png", "img1b.png", "img2.png", "img10.png"]


def test_folder_order_timing_content(folder):
    src = FolderSource(str(folder), SourceConfig(fps=10))
    frames = collect(src)
    assert (src.info.kind, src.info.n_frames, src.info.fps, src.info.width, src.info.height) == \
        ("folder", 12, 10, W, H)
    assert [p.name for p in src.files][:3] == ["img1.png", "img2.png", "img3.png"]
    assert src.files[-1].name == "img12.png"
    assert [f.index for f in frames] == list(range(12))
    assert [f.time for f in frames] == pytest.approx([k / 10 for k in range(12)])
    assert all((f.image == level(f.index)).all() for f in frames)


def test_folder_selection_and_default_fps(folder):
    src = FolderSource(str(folder), SourceConfig(start=3, end=11, stride=3))
    frames = collect(src)
    assert src.info.n_frames == 3 and src.info.fps == 30
    assert [f.index for f in frames] == [3, 6, 9]
    assert [f.time for f in frames] == pytest.approx([0.1, 0.2, 0.3])
    assert [which(f.image) for f in frames] == [3, 6, 9]


def test_folder_other_formats(tmp_path):
    for i, ext in enumerate([".png", ".BMP", ".jpg", ".webp"]):
        write_image(tmp_path / f"f{i}{ext}", 40 * (i + 1))
    frames = collect(open_source(str(tmp_path)))
    assert [int(round(f.image.mean())) for f in frames] == pytest.approx([40, 80, 120, 160], abs=3)


# -- generator -----------------------------------------------------------------

def test_generator_deterministic():
    a = collect(GeneratorSource(n_frames=20, size=(160, 120), seed=3))
    b = collect(GeneratorSource(n_frames=20, size=(160, 120), seed=3))
    c = collect(GeneratorSource(n_frames=20, size=(160, 120), seed=4))
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not np.array_equal(a[5].image, c[5].image)
    assert not np.array_equal(a[0].image, a[10].image)  # the disc moves
    assert [read_index(f.image) for f in a] == list(range(20))
    assert [f.time for f in a] == pytest.approx([k / 30 for k in range(20)])


def test_generator_uri():
    src = open_source("gen:?frames=12&size=320x240&fps=25&live=1&pace=0&seed=7",
                      SourceConfig(start=2, stride=5))
    assert isinstance(src, GeneratorSource)
    frames = collect(src)
    assert src.info == src.info.__class__(uri="gen:?frames=12&size=320x240&fps=25&live=1&pace=0&seed=7",
                                          kind="generator", live=True, fps=25.0, width=320, height=240,
                                          n_frames=2)
    assert [f.index for f in frames] == [2, 7]
    assert [read_index(f.image) for f in frames] == [2, 7]
    default = open_source("gen:")
    assert default.open().n_frames == 300 and (default.info.width, default.info.height) == (640, 480)
    assert open_source("gen:?frames=5", SourceConfig(live=True)).open().live


def test_generator_endless_until_close():
    src = open_source("gen:?frames=0&size=64x48")
    with src:
        assert src.info.n_frames is None
        for f in src.frames():
            if f.index == 500:
                src.close()
    assert f.index == 500


def test_generator_fast():
    src = GeneratorSource(n_frames=1000, size=(640, 480))
    t = time.perf_counter()
    n = len(collect(src))
    assert n == 1000 and (time.perf_counter() - t) / n < 3e-3


def test_generator_paced():
    src = open_source("gen:?frames=16&fps=50&pace=1&size=64x48")
    frames = collect(src)
    assert src.info.live
    span = frames[-1].arrival - frames[0].arrival
    assert 15 / 50 * 0.95 <= span <= 15 / 50 + 0.25
    gaps = np.diff([f.arrival for f in frames])
    assert gaps.min() > 0.5 / 50


def test_generator_custom_render():
    frames = collect(GeneratorSource(lambda k: np.full((4, 6, 3), k, np.uint8), n_frames=3))
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2] and frames[0].image.shape == (4, 6, 3)
    bad = GeneratorSource(lambda k: np.zeros((4, 6), np.uint8), n_frames=3)
    raises_one_line(bad.open, "gen:", "render(0)")


@pytest.mark.parametrize("uri", ["gen:?frames=-1", "gen:?size=10", "gen:?fps=0", "gen:?pace=2", "gen:?colour=red",
                                 "gen:foo"])
def test_generator_bad_uri(uri):
    raises_one_line(lambda: open_source(uri), uri)


# -- bad input -------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    raises_one_line(open_source(str(path)).open, str(path), "not found")


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    raises_one_line(open_source(str(tmp_path)).open, str(tmp_path), "no images")


def test_unreadable_file(videos, tmp_path, monkeypatch):
    path = tmp_path / "locked.mp4"
    path.write_bytes(videos["h264"].read_bytes())
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the OS refuse this one path
        real_open = os.open

        def refuse(p, *args, **kwargs):
            if Path(p) == path:
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(p, *args, **kwargs)

        monkeypatch.setattr(_common.os, "open", refuse)
    raises_one_line(open_source(str(path)).open, str(path), "permission denied")


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my notes, not a video\n" * 20)
    raises_one_line(open_source(str(path)).open, str(path), "not a video")


def test_corrupt_video(videos, tmp_path):
    data = bytearray(videos["h264"].read_bytes())
    moov = data.find(b"moov")
    data[moov - 4 : moov + 200] = bytes(204)  # wipe the index
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    raises_one_line(open_source(str(path)).open, str(path), "corrupt")


def test_truncated_video(videos, tmp_path):
    data = videos["bframes"].read_bytes()  # index at the front (faststart)
    with av.open(str(videos["bframes"])) as c:
        cut = c.streams.video[0].index_entries[N // 2].pos  # cut inside the data, halfway
    path = tmp_path / "half.mp4"
    path.write_bytes(data[:cut])
    src = open_source(str(path))
    got = []
    with pytest.raises(SourceError) as info:
        with src:
            got.extend(src.frames())
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "truncated" in msg and f"of {N} frames" in msg
    assert 0 < len(got) < N and [f.index for f in got] == list(range(len(got)))
    # a file with its index at the end cannot even be opened once cut
    path2 = tmp_path / "half2.mp4"
    data2 = videos["h264"].read_bytes()
    path2.write_bytes(data2[: len(data2) // 2])
    raises_one_line(open_source(str(path2)).open, str(path2), "truncated")


def test_truncated_mkv(videos, tmp_path):
    data = videos["mkv"].read_bytes()
    path = tmp_path / "half.mkv"
    path.write_bytes(data[: len(data) // 2])
    src = open_source(str(path))
    with pytest.raises(SourceError, match="truncated"):
        with src:
            for _ in src.frames():
                pass


def test_corrupt_image_in_folder(folder, tmp_path):
    for i in range(3):
        write_image(tmp_path / f"f{i}.png", 10)
    bad = tmp_path / "f3.png"
    bad.write_bytes((tmp_path / "f0.png").read_bytes()[:40])
    src = open_source(str(tmp_path))
    got = []
    with pytest.raises(SourceError) as info:
        with src:
            got.extend(src.frames())
    assert len(got) == 3 and str(bad) in str(info.value) and "\n" not in str(info.value)


def test_image_of_other_size(tmp_path):
    write_image(tmp_path / "a1.png", 10)
    write_image(tmp_path / "a2.png", 10, size=(32, 24))
    with pytest.raises(SourceError, match="a2.png"):
        collect(open_source(str(tmp_path)))


def test_no_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(bytes(16000))
    raises_one_line(open_source(str(path)).open, str(path), "no video stream")


@pytest.mark.parametrize("uri", ["ftp://example.com/clip.mp4", "foo://bar"])
def test_unsupported_scheme(uri):
    err = raises_one_line(lambda: open_source(uri), uri, "rtsp", "http")
    assert "unsupported" in str(err)


@pytest.mark.parametrize("scheme", ["http", "rtsp", "rtmp"])
def test_unreachable_stream(scheme):
    uri = f"{scheme}://127.0.0.1:{closed_port()}/live"
    t = time.monotonic()
    raises_one_line(open_source(uri, SourceConfig(timeout_s=2)).open, uri)
    assert time.monotonic() - t < 2.0


def test_stream_that_never_answers():
    """A server that accepts but never replies: open gives up after timeout_s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    uri = f"http://127.0.0.1:{server.getsockname()[1]}/live.ts"
    try:
        t = time.monotonic()
        raises_one_line(open_source(uri, SourceConfig(timeout_s=0.5)).open, uri, "0.5 s")
        assert time.monotonic() - t < 2.0
    finally:
        server.close()


@pytest.mark.parametrize("uri", ["/dev/video97", "webcam:97"])
def test_missing_webcam(uri):
    src = open_source(uri)
    assert isinstance(src, WebcamSource)
    raises_one_line(src.open, "/dev/video97", "no such webcam")


def test_dispatch(videos, folder):
    assert isinstance(open_source(str(videos["h264"])), VideoFileSource)
    assert isinstance(open_source("file://" + str(videos["h264"])), VideoFileSource)
    assert isinstance(open_source(str(folder)), FolderSource)
    assert isinstance(open_source("rtsp://127.0.0.1:8554/cam"), StreamSource)
    assert isinstance(open_source("https://127.0.0.1/live.m3u8"), StreamSource)
    assert isinstance(open_source("/dev/video0?video_size=640x480&framerate=30"), WebcamSource)
    raises_one_line(lambda: open_source("/dev/video0?fps=30"), "fps")
    raises_one_line(lambda: open_source(""), "empty")


# -- network streams (127.0.0.1 only) ----------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_dir(videos):
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_QuietHandler, directory=str(videos["bframes"].parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_file_matches_local(videos, http_dir):
    src = open_source(f"{http_dir}/bframes.mp4", SourceConfig(timeout_s=5))
    got = collect(src)
    assert isinstance(src, StreamSource) and not src.info.live and src.info.n_frames == N
    local = collect(VideoFileSource(str(videos["bframes"])))
    assert [(f.index, f.time) for f in got] == [(f.index, f.time) for f in local]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, local))


def test_http_file_resumes_after_cut(videos):
    """The first response breaks off two thirds in; the source reconnects and resumes."""
    data = videos["bframes"].read_bytes()

    def respond(conn: socket.socket, k: int) -> None:
        body = data if k > 0 else data[: len(data) * 2 // 3]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(data) + body)
        conn.close()

    server, _ = local_http_server(respond)
    try:
        src = open_source(f"http://127.0.0.1:{server.getsockname()[1]}/clip.mp4",
                          SourceConfig(timeout_s=5, reconnect_backoff_s=0.01))
        got = collect(src)
    finally:
        server.close()
    local = collect(VideoFileSource(str(videos["bframes"])))
    assert src.reconnects == 1 and not src.info.live
    assert [(f.index, f.time) for f in got] == [(f.index, f.time) for f in local]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, local))


@pytest.fixture(scope="module")
def ts_file(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("ts") / "live.ts", preset="ultrafast")


def local_http_server(respond) -> tuple[socket.socket, list[socket.socket]]:
    """A server on 127.0.0.1 that reads each request and calls ``respond(conn, k)`` for the
    k-th connection (0-based); returns the listening socket and the accepted connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.recv(4096)
            respond(conn, len(accepted) - 1)

    threading.Thread(target=serve, daemon=True).start()
    return server, accepted


def stalling_server(payload: bytes) -> tuple[socket.socket, str]:
    """An HTTP server sending ``payload`` with no length, then keeping the socket open."""
    server, _ = local_http_server(
        lambda conn, k: conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n" + payload))
    return server, f"http://127.0.0.1:{server.getsockname()[1]}/live.ts"


def test_close_ends_blocking_live_read(ts_file):
    server, uri = stalling_server(ts_file.read_bytes())
    try:
        src = open_source(uri, SourceConfig(timeout_s=30))
        info = src.open()
        assert info.live and info.n_frames is None
        got: list = []
        reader = threading.Thread(target=lambda: got.extend(src.frames()))
        reader.start()
        deadline = time.monotonic() + 5
        while len(got) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the reader is now blocked on the silent socket
        assert reader.is_alive() and len(got) >= 30
        t = time.monotonic()
        src.close()
        reader.join(3)
        assert not reader.is_alive() and time.monotonic() - t < 2
    finally:
        server.close()


def test_live_read_timeout_reconnects(ts_file):
    server, uri = stalling_server(ts_file.read_bytes())
    try:
        src = open_source(uri, SourceConfig(timeout_s=0.3, reconnect_backoff_s=0.01))
        got = collect(src, limit=100)
        assert src.reconnects >= 2
        assert [f.index for f in got] == list(range(100))
        assert all(b.time > a.time for a, b in zip(got, got[1:]))
    finally:
        server.close()


def test_reconnect_backoff_schedule(ts_file):
    """Fake opener: three good connections (EOF each), then the stream is gone."""
    calls: list[dict[str, str]] = []

    def opener(url: str, options: dict[str, str], timeout: float):
        calls.append(options)
        if len(calls) > 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return av.open(str(ts_file))

    cfg = SourceConfig(reconnect_attempts=3, reconnect_backoff_s=0.01, reconnect_backoff_max_s=0.025, timeout_s=2)
    src = StreamSource("rtsp://127.0.0.1:1/cam", cfg, opener=opener)
    got = []
    with pytest.raises(SourceError) as info:
        with src:
            got.extend(src.frames())
    msg = str(info.value)
    assert "\n" not in msg and "rtsp://127.0.0.1:1/cam" in msg and "3 reconnect attempts" in msg
    assert src.info.live and src.reconnects == 2
    assert src.backoffs == [0.01, 0.01, 0.01, 0.02, 0.025]
    assert calls[0]["rtsp_transport"] == "tcp" and calls[0]["timeout"] == "2000000"
    assert [f.index for f in got] == list(range(3 * N))
    times = [f.time for f in got]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert times[N - 1] == pytest.approx((N - 1) / 30)


def test_no_reconnect_attempts_fails_at_once(ts_file):
    src = StreamSource("udp://127.0.0.1:1", SourceConfig(reconnect_attempts=0),
                       opener=lambda *a: av.open(str(ts_file)))
    with pytest.raises(SourceError, match="0 reconnect attempts"):
        collect(src)
    assert src.backoffs == []


def test_close_is_idempotent_and_safe(videos):
    src = VideoFileSource(str(videos["h264"]))
    src.close()  # before open
    src = VideoFileSource(str(videos["h264"]))
    src.open()
    it = src.frames()
    next(it)
    src.close()
    src.close()
    assert list(it) == []
