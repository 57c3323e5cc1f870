"""The object stage: the object's 6-DoF pose per frame, the metric anchor of the scene.

Pose sources: poses from another tracker (``--object-poses``: FoundationPose-style
files, npz, BOP JSON; see :mod:`inscene.models.objects.external`). The
region-based tracker that needs no poses plugs in here as a second source.
"""

from __future__ import annotations

import numpy as np

from inscene.models.objects import ExternalTracks, ObjectMesh

from ..frame import Packet
from ..stage import RunContext, Stage
from ..store.schema import ArraySpec

_NAN44 = np.full((4, 4), np.nan)


class ExternalObjectPoses(Stage):
    """Looks up each frame's ``T_cam_obj`` in external tracks (by source index or time)."""

    name = "object"
    produces = ("object_pose",)

    def __init__(self, mesh: ObjectMesh, tracks: ExternalTracks) -> None:
        self.mesh = mesh
        self.tracks = tracks
        self.period: float | None = None

    def fields(self) -> list[ArraySpec]:
        return [
            ArraySpec("object/valid", "bool", (), ("time",), False, doc="the object's pose is known"),
            ArraySpec("object/T_cam_obj", "float64", (4, 4), ("time", "row", "col"), np.nan,
                      doc="object pose: object frame -> camera frame, metres"),
            ArraySpec("object/score", "float32", (), ("time",), np.nan, doc="tracking confidence in [0, 1]"),
        ]

    def static_fields(self) -> dict[str, np.ndarray]:
        return {"object/mesh/vertices": self.mesh.vertices.astype(np.float32),
                "object/mesh/faces": self.mesh.faces.astype(np.int32)}

    def setup(self, ctx: RunContext) -> None:
        fps = getattr(ctx.source_info, "fps", None)
        self.period = ctx.config.source.stride / fps if fps else None

    def process(self, packet: Packet) -> list[Packet]:
        T = self.tracks.pose_at(packet.frame.index, packet.frame.time, self.period)
        packet.data["object_pose"] = T
        packet.fields["object/valid"] = T is not None
        packet.fields["object/T_cam_obj"] = T if T is not None else _NAN44
        packet.fields["object/score"] = 1.0 if T is not None else np.nan
        return [packet]
