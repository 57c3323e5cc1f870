"""What every benchmark reports: figures with spread, the machine, the versions.

Method (bench/README section of the top-level README): warm up once, repeat,
report the median and the spread (min..max and IQR) of the repeats, pin seeds,
and write a JSON with the commit, machine and versions next to the printed table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path("bench/results")


def stats(samples: list[float] | np.ndarray) -> dict[str, float]:
    """Median, IQR, min and max of repeated measurements."""
    a = np.asarray(samples, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "iqr": float(q3 - q1), "min": float(a.min()), "max": float(a.max()), "n": int(a.size)}


def fmt(s: dict[str, float], unit: str = "", digits: int = 2) -> str:
    return (f"{s['median']:.{digits}f}{unit} (IQR {s['iqr']:.{digits}f}, "
            f"range {s['min']:.{digits}f}..{s['max']:.{digits}f}, n={s['n']})")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    pkgs = {}
    for name in ("inscene", "numpy", "av", "zarr", "torch", "numba", "onnxruntime"):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": pkgs,
        "commit": _commit(),
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def header(title: str) -> str:
    m = machine()
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    return (f"# {title}\nmachine: {m['cpu']}, {m['cores']} cores, {m['platform']}\n"
            f"versions: python {m['python']}, {pk}; commit {m['commit']}")


def write_json(name: str, figures: dict[str, Any], path: str | Path | None = None) -> Path:
    p = Path(path) if path else RESULTS / f"{name}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "figures": figures}
    p.write_text(json.dumps(doc, indent=2))
    return p
