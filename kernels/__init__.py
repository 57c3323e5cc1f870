"""numba / torch kernels: SDF grid + lookup (with gradients), ray-mesh casts, rasterizer and shading, hand
skinning with exact Jacobians (``handkin``) and the per-frame fit's Levenberg-Marquardt (``handfit``).

Each kernel is a ``_``-prefixed numba core with preallocated outputs, a public
wrapper that checks shapes and dtypes, and (for the SDF) a torch autograd function.
"""

from pathlib import Path

import os as _os

# torch's (and numba's) OpenMP workers must sleep when idle, not spin: the engine runs its
# stages in threads side by side on few cores, and spinning workers starve them (a window
# solve took many times longer under load). Takes effect if set before torch is first imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._cache import refresh_numba_cache

refresh_numba_cache(Path(__file__).resolve().parent)  # before any cached kernel is loaded

from ._parallel import get_parallel_scale, set_parallel_scale  # noqa: E402
from .bvh import BVH  # noqa: E402
from .raster import Raster, Silhouettes, pack_meshes, project, rasterize, render_silhouettes  # noqa: E402
from .raycast import RayCaster, RayHits, cast_rays  # noqa: E402
from .sdf import SDFGrid, SDFLookup, build_sdf, sdf_grid, sdf_lookup, sdf_torch  # noqa: E402
from .shading import Appearance, blend, overlay, render, shade, vertex_normals  # noqa: E402
from .winding import winding_number  # noqa: E402

__all__ = [
    "BVH", "Raster", "Silhouettes", "pack_meshes", "project", "rasterize", "render_silhouettes",
    "RayCaster", "RayHits", "cast_rays",
    "SDFGrid", "SDFLookup", "build_sdf", "sdf_grid", "sdf_lookup", "sdf_torch",
    "Appearance", "blend", "overlay", "render", "shade", "vertex_normals",
    "winding_number", "get_parallel_scale", "set_parallel_scale",
]
