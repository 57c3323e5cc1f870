"""Read the official MANO pickles without chumpy (and without running arbitrary code).

The MANO_RIGHT.pkl / MANO_LEFT.pkl files were written with Python 2: a dict of
numpy arrays, a scipy sparse joint regressor, and chumpy ``Ch`` objects for some
arrays (chumpy does not import on Python 3.11). This reader resolves only the
globals such a file needs: numpy's array reconstruction, and placeholders that
record the pickled state of chumpy and scipy.sparse objects, which are then turned
into plain arrays. Any other global makes it fail with :class:`PickleFormatError`,
so a hostile or unrelated pickle cannot execute code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


_SAFE_BUILTINS = {t.__name__: t for t in (object, set, frozenset, list, dict, tuple, bytearray, bytes, str, int,
                                            float, complex, bool, slice)}


class PickleFormatError(ValueError):
    """The file is not a MANO-format pickle this reader understands."""


class _Recorded:
    """Stands in for a chumpy or scipy.sparse object: keeps the class name and pickled state."""

    module = ""
    qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            merged: dict[str, Any] = {}
            for part in state:
                if isinstance(part, dict):
                    merged.update(part)
            state = merged
        if not isinstance(state, dict):
            raise PickleFormatError(f"unexpected pickled state of {self.module}.{self.qualname}")
        self.state = state


def _recorded_class(module: str, name: str) -> type:
    return type(name, (_Recorded,), {"module": module, "qualname": name})


def _reconstructor(cls: type, base: type, state: Any = None) -> Any:
    """copyreg._reconstructor restricted to the placeholder classes."""
    if not (isinstance(cls, type) and issubclass(cls, _Recorded)):
        raise PickleFormatError(f"refusing to reconstruct {cls!r}")
    return cls.__new__(cls)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            module = module.replace("numpy.core", "numpy._core")
            return super().find_class(module, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "_codecs" and name == "encode":  # bytes in protocol-2 pickles written by Python 3
            return super().find_class(module, name)
        if module.split(".")[0] == "chumpy" or module.startswith("scipy.sparse"):
            return _recorded_class(module, name)
        raise PickleFormatError(f"unexpected object {module}.{name} in the pickle")


def _sparse_to_dense(obj: _Recorded) -> np.ndarray:
    s = obj.state
    shape = s.get("_shape", s.get("shape"))
    data, indices, indptr = s.get("data"), s.get("indices"), s.get("indptr")
    if shape is None or data is None or indices is None or indptr is None:
        raise PickleFormatError(f"unsupported sparse matrix {obj.qualname}")
    rows, cols = int(shape[0]), int(shape[1])
    dense = np.zeros((rows, cols), dtype=np.float64)
    major = cols if obj.qualname.startswith("csc") else rows
    if not obj.qualname.startswith(("csc", "csr")):
        raise PickleFormatError(f"unsupported sparse matrix {obj.qualname}")
    for m in range(major):
        lo, hi = int(indptr[m]), int(indptr[m + 1])
        if obj.qualname.startswith("csc"):
            dense[np.asarray(indices[lo:hi]), m] = data[lo:hi]
        else:
            dense[m, np.asarray(indices[lo:hi])] = data[lo:hi]
    return dense


def _plain(value: Any) -> Any:
    """A pickled value with placeholders replaced by numpy arrays."""
    if isinstance(value, _Recorded):
        if value.module.startswith("scipy.sparse"):
            return _sparse_to_dense(value)
        if "x" in value.state and isinstance(value.state["x"], np.ndarray):
            return np.asarray(value.state["x"])
        raise PickleFormatError(f"unsupported chumpy object {value.module}.{value.qualname} (no array 'x')")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load_mano_pickle(path: str | Path) -> dict[str, Any]:
    """The MANO pickle at ``path`` as a dict of plain numpy arrays and strings.

    Raises:
        PickleFormatError: the file is not a readable MANO-format pickle.
    """
    raw = Path(path).read_bytes()
    try:
        obj = _Unpickler(io.BytesIO(raw), encoding="latin1").load()
    except PickleFormatError:
        raise
    except Exception as e:  # truncated, not a pickle, ...
        raise PickleFormatError(f"not a readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise PickleFormatError(f"expected a dict of arrays, got {type(obj).__name__}")
    return {str(k): _plain(v) for k, v in obj.items()}
