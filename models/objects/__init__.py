"""Objects: meshes (with unit detection) and 6-DoF pose sources."""

from .external import ExternalTracks, load_external_tracks
from .mesh import ObjectMesh, load_object_mesh

__all__ = ["ExternalTracks", "ObjectMesh", "load_external_tracks", "load_object_mesh"]
