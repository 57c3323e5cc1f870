"""The hand detector's weights: MediaPipe's two ``.tflite`` networks, fetched once per machine.

The files come out of the ``mediapipe==0.10.21`` wheel (the last one that ships
them; Apache-2.0), downloaded with ``pip download --no-deps`` at set-up —
mediapipe itself is never installed. Each file is checked against the sha256
recorded here and stored in the cache (``$INSCENE_CACHE`` or
``~/.cache/inscene``, under ``mediapipe-0.10.21/``) with an atomic rename.

Offline machines: copy the wheel (any platform's: the two files are the same in
all of them) or the two ``.tflite`` files to the machine and run
``inscene models fetch --from PATH``. ``$INSCENE_WEIGHTS_FROM`` does the same for
the automatic fetch of the tests.

Nothing is downloaded while a job runs: a job whose weights are missing stops
with one line that says which command to run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from inscene.engine.errors import InputError
from inscene.engine.cache import build_once, cache_dir

WHEEL = "mediapipe==0.10.21"
"""The pip requirement the weights are taken from."""
ENV_FROM = "INSCENE_WEIGHTS_FROM"
"""Environment variable: a wheel or directory to take the weights from instead of PyPI."""
_FALLBACK_PLATFORM = ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--only-binary=:all:")


@dataclass(frozen=True)
class WeightFile:
    """One network file of the wheel.

    Attributes:
        name: short name, also the cached file's stem.
        member: path of the file inside the wheel.
        sha256: expected digest of the file.
        size: expected size in bytes.
    """

    name: str
    member: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return f"{self.name}.tflite"


PALM = WeightFile("palm_detection_full", "mediapipe/modules/palm_detection/palm_detection_full.tflite",
                  "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54", 2339846)
LANDMARK = WeightFile("hand_landmark_full", "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                      "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3", 5478917)
WEIGHTS: dict[str, WeightFile] = {w.name: w for w in (PALM, LANDMARK)}

_HINT = ("run 'inscene models fetch' where PyPI is reachable; offline, get the wheel elsewhere with "
         "'pip download --no-deps mediapipe==0.10.21' (any platform), copy it or its two .tflite files here "
         "and run 'inscene models fetch --from PATH'")


def weights_dir(create: bool = True) -> Path:
    """Where the fetched files are cached."""
    return cache_dir("mediapipe-0.10.21", create=create)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _valid(w: WeightFile, path: Path) -> bool:
    return path.is_file() and path.stat().st_size == w.size and sha256_file(path) == w.sha256


def cached_path(w: WeightFile) -> Path:
    """The cache path of ``w`` (which may not exist yet)."""
    return weights_dir(create=False) / w.filename


def missing() -> list[WeightFile]:
    """The weight files not (validly) in the cache."""
    return [w for w in WEIGHTS.values() if not _valid(w, cached_path(w))]


def weights_path(w: WeightFile) -> Path:
    """The cached, verified file of ``w``; raises :class:`InputError` with instructions if absent.

    Never downloads (jobs must not); see :func:`fetch`.
    """
    p = cached_path(w)
    if not _valid(w, p):
        what = "is missing" if not p.exists() else "does not match its recorded sha256"
        raise InputError(str(p), f"hand detector weights {what}", _HINT)
    return p


def _install(w: WeightFile, data: bytes, origin: str) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    if digest != w.sha256:
        raise InputError(origin, f"{w.filename} has sha256 {digest[:12]}..., expected {w.sha256[:12]}...",
                         f"use the files of {WHEEL} (any platform)")
    target = weights_dir() / w.filename
    build_once(target, lambda tmp: tmp.write_bytes(data), lambda p: _valid(w, p))
    return target


def _from_wheel(wheel: Path, want: list[WeightFile]) -> dict[str, Path]:
    try:
        with zipfile.ZipFile(wheel) as z:
            names = set(z.namelist())
            out = {}
            for w in want:
                if w.member not in names:
                    raise InputError(str(wheel), f"the wheel has no {w.member}", f"use the {WHEEL} wheel")
                out[w.name] = _install(w, z.read(w.member), str(wheel))
            return out
    except zipfile.BadZipFile:
        raise InputError(str(wheel), "not a wheel (zip) file", f"give the {WHEEL} wheel or a folder") from None


def _from_dir(folder: Path, want: list[WeightFile]) -> dict[str, Path]:
    wheels = sorted(folder.glob("mediapipe-0.10.21-*.whl"))
    out: dict[str, Path] = {}
    for w in want:
        hits = [p for p in (folder / w.filename, folder / w.member) if p.is_file()]
        hits += [p for p in folder.rglob(w.filename) if p not in hits]
        if hits:
            out[w.name] = _install(w, hits[0].read_bytes(), str(hits[0]))
    rest = [w for w in want if w.name not in out]
    if rest and wheels:
        out.update(_from_wheel(wheels[0], rest))
        rest = []
    if rest:
        raise InputError(str(folder), f"neither {', '.join(w.filename for w in rest)} nor a mediapipe-0.10.21 wheel "
                         "found there", _HINT)
    return out


def _pip_download(dest: Path) -> Path:
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", WHEEL,
            "-d", str(dest)]
    err = ""
    for extra in ((), _FALLBACK_PLATFORM):  # the files are the same in every platform's wheel
        try:
            r = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            err = str(e)
            continue
        found = sorted(dest.glob("mediapipe-*.whl"))
        if r.returncode == 0 and found:
            return found[0]
        lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
        err = lines[-1].strip() if lines else f"pip exited with {r.returncode}"
    raise InputError(WHEEL, f"cannot download the hand detector weights ({err})", _HINT)


def fetch(source: str | Path | None = None) -> dict[str, Path]:
    """Make sure both weight files are cached; returns name -> cached path.

    ``source``: a wheel, or a directory holding the wheel or the ``.tflite``
    files; None uses ``$INSCENE_WEIGHTS_FROM`` if set, else ``pip download``.
    Files already cached and valid are not fetched again.
    """
    want = missing()
    if not want:
        return {w.name: cached_path(w) for w in WEIGHTS.values()}
    src = source if source is not None else os.environ.get(ENV_FROM) or None
    if src is not None:
        p = Path(src).expanduser()
        if p.is_dir():
            _from_dir(p, want)
        elif p.is_file():
            _from_wheel(p, want)
        else:
            raise InputError(str(p), "no such file or directory", f"give the {WHEEL} wheel or a folder with the files")
    else:
        with tempfile.TemporaryDirectory(prefix="inscene-weights-") as tmp:
            _from_wheel(_pip_download(Path(tmp)), want)
    return {w.name: weights_path(w) for w in WEIGHTS.values()}
