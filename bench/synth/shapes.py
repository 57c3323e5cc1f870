"""Procedural meshes of the synthetic scenes: box, cylinder, cup, mug, table top and back wall.

Every object is built in its own frame: z up, standing on the plane z = 0, its
vertical axis through x = y = 0 (a mug's handle points along +x). Meshes are
closed and wound outwards (the mug is the union of a closed cup and a closed
handle, which the winding-number SDF treats as one solid), carry per-vertex
texture coordinates into a 2 x 2 atlas of the object's texture (see
``textures.object_texture``): side in the upper half, top in the lower left,
bottom in the lower right. Sharp edges have split vertices so that smooth shading
keeps them sharp.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Mesh:
    """A triangle mesh with its appearance, in its own frame (metres).

    Attributes:
        vertices: (V, 3) float64.
        faces: (F, 3) int32, wound outwards.
        uv: (V, 2) float64 texture coordinates (v up), or None.
        texture: (Ht, Wt, 3) uint8, or None.
        vertex_colors: (V, 3) uint8, or None.
        name: what it is (``box``, ``ycb:025_mug``, ``table``, ...).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def extents(self) -> np.ndarray:
        """(3,) axis-aligned size, metres."""
        return self.vertices.max(0) - self.vertices.min(0)


class _Builder:
    """Accumulates vertices (with uv) and faces of several parts."""

    def __init__(self) -> None:
        self.v: list[np.ndarray] = []
        self.uv: list[np.ndarray] = []
        self.f: list[np.ndarray] = []
        self.n = 0

    def add(self, verts: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> None:
        self.v.append(np.asarray(verts, np.float64).reshape(-1, 3))
        self.uv.append(np.asarray(uv, np.float64).reshape(-1, 2))
        self.f.append(np.asarray(faces, np.int64).reshape(-1, 3) + self.n)
        self.n += len(self.v[-1])

    def grid(self, points: np.ndarray, uv: np.ndarray, flip: bool = False) -> None:
        """A quad grid of (R, C, 3) points (two triangles per cell)."""
        r, c = points.shape[:2]
        idx = np.arange(r * c).reshape(r, c)
        a, b, d, e = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
        tri = np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3), np.stack([b, d, e], -1).reshape(-1, 3)])
        if flip:
            tri = tri[:, ::-1]
        self.add(points.reshape(-1, 3), uv.reshape(-1, 2), tri)

    def mesh(self, name: str) -> Mesh:
        return Mesh(np.concatenate(self.v), np.concatenate(self.f).astype(np.int32), np.concatenate(self.uv),
                    name=name)


def _revolve(b: _Builder, profile: np.ndarray, v_range: tuple[float, float], segments: int,
             flip: bool = False) -> None:
    """A surface of revolution of the (N, 2) profile (radius, z) about z, uv into the atlas's upper half.

    Wound outwards when the profile runs bottom to top on an outer wall (``flip`` for inner walls).
    """
    ang = np.linspace(0.0, 2 * np.pi, segments + 1)
    r, z = profile[:, 0], profile[:, 1]
    pts = np.stack([r[:, None] * np.cos(ang)[None], r[:, None] * np.sin(ang)[None],
                    np.broadcast_to(z[:, None], (len(r), len(ang)))], -1)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(profile, axis=0), axis=1))])
    s = s / max(s[-1], 1e-12)
    uv = np.stack([np.broadcast_to(ang[None] / (2 * np.pi), pts.shape[:2]),
                   v_range[0] + (v_range[1] - v_range[0]) * np.broadcast_to(s[:, None], pts.shape[:2])], -1)
    b.grid(pts, uv, flip=not flip)


def _disc(b: _Builder, radius: float, z: float, up: bool, segments: int, rings: int = 3,
          inner: float = 0.0, atlas: tuple[float, float] = (0.0, 0.0)) -> None:
    """A flat disc (or annulus from ``inner``) at height z facing +z (``up``) or -z; uv into an atlas tile."""
    ang = np.linspace(0.0, 2 * np.pi, segments + 1)
    rad = np.linspace(inner, radius, rings + 1)
    if inner == 0.0:
        rad[0] = 1e-9 * radius  # a degenerate first ring keeps the grid layout; its triangles have zero area
    pts = np.stack([rad[:, None] * np.cos(ang)[None], rad[:, None] * np.sin(ang)[None], np.full((len(rad), len(ang)), z)],
                   -1)
    uv = np.stack([atlas[0] + 0.25 + 0.24 * pts[..., 0] / radius, atlas[1] + 0.25 + 0.24 * pts[..., 1] / radius], -1)
    b.grid(pts, uv, flip=not up)


def box(width: float, depth: float, height: float, cells: int = 4) -> Mesh:
    """A box ``width`` (x) by ``depth`` (y) by ``height`` (z), base at z = 0; each face a grid of cells."""
    b = _Builder()
    hx, hy = width / 2, depth / 2
    t = np.linspace(0.0, 1.0, cells + 1)
    uu, vv = np.meshgrid(t, t, indexing="xy")
    # sides go round the upper half of the atlas (u by perimeter), top and bottom into the lower tiles
    perim = 2 * (width + depth)
    corners = [(-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy), (-hx, -hy)]
    u0 = 0.0
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:]):
        length = np.hypot(x1 - x0, y1 - y0)
        pts = np.stack([x0 + (x1 - x0) * uu, y0 + (y1 - y0) * uu, height * vv], -1)
        uv = np.stack([(u0 + length * uu) / perim, 0.5 + 0.5 * vv], -1)
        b.grid(pts, uv, flip=True)
        u0 += length
    for z, up, tile in ((height, True, (0.0, 0.0)), (0.0, False, (0.5, 0.0))):
        pts = np.stack([-hx + width * uu, -hy + depth * vv, np.full_like(uu, z)], -1)
        uv = np.stack([tile[0] + 0.02 + 0.46 * uu, tile[1] + 0.02 + 0.46 * vv], -1)
        b.grid(pts, uv, flip=up)
    return _fix_winding(b.mesh("box"))


def cylinder(radius: float, height: float, segments: int = 48, rows: int = 8) -> Mesh:
    """A closed cylinder (a can or bottle) of ``radius`` and ``height``, base at z = 0."""
    b = _Builder()
    prof = np.stack([np.full(rows + 1, radius), np.linspace(0.0, height, rows + 1)], -1)
    _revolve(b, prof, (0.5, 1.0), segments)
    _disc(b, radius, height, True, segments, atlas=(0.0, 0.0))
    _disc(b, radius, 0.0, False, segments, atlas=(0.5, 0.0))
    return _fix_winding(b.mesh("cylinder"))


def cup(radius_bottom: float, radius_top: float, height: float, wall: float = 0.004, segments: int = 48,
        rows: int = 8, name: str = "cup") -> Mesh:
    """An open, tapered cup with walls of thickness ``wall`` and a floor as thick, base at z = 0."""
    b = _Builder()
    z = np.linspace(0.0, height, rows + 1)
    r_out = radius_bottom + (radius_top - radius_bottom) * z / height
    _revolve(b, np.stack([r_out, z], -1), (0.5, 1.0), segments)
    _disc(b, radius_top, height, True, segments, rings=1, inner=radius_top - wall, atlas=(0.0, 0.0))  # rim
    zi = np.linspace(wall, height, rows + 1)
    r_in = radius_bottom + (radius_top - radius_bottom) * zi / height - wall
    _revolve(b, np.stack([r_in, zi], -1), (0.5, 1.0), segments, flip=True)  # inner wall faces the axis
    _disc(b, r_in[0], wall, True, segments, atlas=(0.0, 0.0))  # inside floor
    _disc(b, radius_bottom, 0.0, False, segments, atlas=(0.5, 0.0))
    return _fix_winding(b.mesh(name), check_closed=True)


def mug(radius: float, height: float, wall: float = 0.006, handle_radius: float = 0.024,
        handle_half: tuple[float, float] = (0.003, 0.006), segments: int = 48) -> Mesh:
    """A straight mug (a cup) with a handle on +x: an elliptic tube along a half-torus whose ends sit in the wall.

    ``handle_half`` are the tube's half-thicknesses radially and vertically; its ends
    lie at the middle of the wall, so the tube never shows inside the mug.
    """
    body = cup(radius, radius, height, wall, segments, name="mug")
    b = _Builder()
    b.add(body.vertices, body.uv, body.faces)
    mid = radius - wall / 2
    zc = 0.55 * height
    # centre line: an arc in the x-z plane bulging out to x = mid + handle_radius, ends on the wall's middle
    half_span = min(0.42 * height, handle_radius * 1.1)
    t = np.linspace(-1.0, 1.0, 25)
    cx = mid + handle_radius * np.sqrt(np.clip(1.0 - t ** 2, 0.0, 1.0)) ** 0.8
    cz = zc + half_span * t
    centre = np.stack([cx, np.zeros_like(cx), cz], -1)
    tang = np.gradient(centre, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    side = np.array([0.0, 1.0, 0.0])
    normal = np.cross(side, tang)  # in the x-z plane, outwards from the arc's inside
    ring = np.linspace(0.0, 2 * np.pi, 17)
    pts = (centre[:, None] + handle_half[0] * np.cos(ring)[None, :, None] * normal[:, None]
           + handle_half[1] * np.sin(ring)[None, :, None] * side)
    uv = np.stack([np.broadcast_to(ring[None] / (2 * np.pi), pts.shape[:2]) * 0.1 + 0.9,
                   np.broadcast_to((t[:, None] + 1) / 4 + 0.5, pts.shape[:2])], -1)
    b.grid(pts, uv)
    for end, flip in ((0, False), (-1, True)):  # cap the tube's ends (inside the wall)
        ring_pts = pts[end, :-1]
        k = np.arange(len(ring_pts))
        tri = np.stack([np.zeros(len(ring_pts), int), 1 + k, 1 + (k + 1) % len(ring_pts)], -1)
        b.add(np.concatenate([centre[end][None], ring_pts]), np.full((len(ring_pts) + 1, 2), 0.95),
              tri[:, ::-1] if flip else tri)
    m = b.mesh("mug")
    return _fix_winding(m, parts=((0, len(body.faces)), (len(body.faces), len(m.faces))))


def _fix_winding(m: Mesh, check_closed: bool = False, parts: tuple[tuple[int, int], ...] | None = None) -> Mesh:
    """Make each part's faces wound outwards (positive signed volume), per connected part of the face list."""
    parts = parts or ((0, len(m.faces)),)
    faces = m.faces.copy()
    for lo, hi in parts:
        f = faces[lo:hi]
        v = m.vertices
        vol = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum()
        if vol < 0:
            faces[lo:hi] = f[:, ::-1]
    m.faces = faces.astype(np.int32)
    return m


def table_top(size: tuple[float, float] = (1.6, 1.0), thickness: float = 0.03, texture_scale: float = 0.5) -> Mesh:
    """A table top in its frame: the surface z = 0 over ``size`` (x, y) centred at the origin, with a front edge.

    Texture coordinates repeat every ``texture_scale`` metres.
    """
    b = _Builder()
    sx, sy = size[0] / 2, size[1] / 2
    t = np.linspace(0.0, 1.0, 9)
    uu, vv = np.meshgrid(t, t, indexing="xy")
    pts = np.stack([-sx + 2 * sx * uu, -sy + 2 * sy * vv, np.zeros_like(uu)], -1)
    b.grid(pts, pts[..., :2] / texture_scale, flip=True)
    for y0, sign in ((-sy, 1.0), (sy, -1.0)):  # front and back edges, facing out
        e = np.stack([-sx + 2 * sx * uu[:2], np.full((2, 9), y0), -thickness * np.array([[0.0], [1.0]]).repeat(9, 1)],
                     -1)
        b.grid(e, np.stack([e[..., 0] / texture_scale, e[..., 2] / texture_scale], -1), flip=sign < 0)
    return b.mesh("table")


def wall(width: float = 4.0, height: float = 2.5, texture_scale: float = 1.0) -> Mesh:
    """A vertical wall in its frame: the plane y = 0, x in +-width/2, z from -1 m to ``height``, facing -y."""
    b = _Builder()
    t = np.linspace(0.0, 1.0, 5)
    uu, vv = np.meshgrid(t, t, indexing="xy")
    pts = np.stack([-width / 2 + width * uu, np.zeros_like(uu), -1.0 + (height + 1.0) * vv], -1)
    b.grid(pts, np.stack([pts[..., 0], pts[..., 2]], -1) / texture_scale, flip=True)
    return b.mesh("wall")
