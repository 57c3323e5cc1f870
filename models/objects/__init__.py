"""Objects: meshes (with unit detection) and 6-DoF poses: the region tracker and external tracks."""

from .external import ExternalTracks, load_external_tracks
from .mesh import ObjectMesh, load_object_mesh

__all__ = ["ExternalTracks", "ObjectMesh", "SessionConfig", "TrackingSession", "load_external_tracks",
           "load_object_mesh"]


def __getattr__(name: str):
    """The tracker's classes, imported on first use (they compile numba kernels)."""
    if name in ("SessionConfig", "TrackingSession"):
        from . import session

        return getattr(session, name)
    raise AttributeError(name)
