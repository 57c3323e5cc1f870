"""Naive twins of the kernels: plain loops in numpy, written for clarity, not speed (STYLE.md 6).

Each takes the same inputs as the kernel it checks and uses a different (simpler)
formulation where one exists, so that a shared mistake is unlikely.
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- distance / winding number


def naive_closest_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance (N,) from each point to the nearest triangle: plane projection if it falls inside, else edges."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = np.cross(b - a, c - a)
    nn = np.einsum("ij,ij->i", n, n)
    out = np.empty(len(points))
    for q, p in enumerate(np.asarray(points, dtype=np.float64)):
        best = np.inf
        # projection onto the plane, kept if inside the triangle (non-degenerate faces only)
        ok = nn > 0
        s = np.einsum("ij,ij->i", p - a, n)
        proj = p - (s / np.where(ok, nn, 1.0))[:, None] * n
        inside = ok.copy()
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= np.einsum("ij,ij->i", np.cross(v - u, proj - u), n) >= 0
        if inside.any():
            best = np.abs(s[inside] / np.sqrt(nn[inside])).min()
        for u, v in ((a, b), (b, c), (c, a)):
            e = v - u
            ee = np.einsum("ij,ij->i", e, e)
            t = np.clip(np.einsum("ij,ij->i", p - u, e) / np.where(ee > 0, ee, 1.0), 0.0, 1.0)
            best = min(best, np.linalg.norm(u + t[:, None] * e - p, axis=1).min())
        out[q] = best
    return out


def naive_winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalized winding number (N,): the sum of the triangles' solid angles over 4 pi, exactly."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    out = np.empty(len(points))
    for q, p in enumerate(np.asarray(points, dtype=np.float64)):
        a, b, c = tri[:, 0] - p, tri[:, 1] - p, tri[:, 2] - p
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la \
            + np.einsum("ij,ij->i", c, a) * lb
        out[q] = (2.0 * np.arctan2(num, den)).sum() / (4 * np.pi)
    return out


def naive_signed_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact distance, negative where the exact winding number's magnitude exceeds 0.5."""
    d = naive_closest_distance(vertices, faces, points)
    w = naive_winding_number(vertices, faces, points)
    return np.where(np.abs(w) > 0.5, -d, d)


# --------------------------------------------------------------------------- SDF grid lookup


def naive_trilinear(values: np.ndarray, origin: np.ndarray, spacing: float,
                    points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear value (N,) and gradient (N, 3) by summing the 8 corner weights, one point at a time.

    Outside the grid: the value at the clamped point plus the distance to it; gradient
    the grid gradient along the unclamped axes and the unit offset along the others.
    """
    shape = np.array(values.shape)
    d = np.empty(len(points))
    g = np.empty((len(points), 3))
    for q, p in enumerate(np.asarray(points, dtype=np.float64)):
        x = (p - origin) / spacing
        c = np.clip(x, 0, shape - 1)
        i = np.minimum(np.floor(c).astype(int), shape - 2)
        f = c - i
        val, grad = 0.0, np.zeros(3)
        for corner in np.ndindex(2, 2, 2):
            o = np.array(corner)
            wts = np.where(o == 1, f, 1 - f)
            v = float(values[tuple(i + o)])
            val += v * wts.prod()
            for k in range(3):  # d/df_k of the product: replace factor k by its derivative (+-1)
                dw = wts.copy()
                dw[k] = 1.0 if o[k] == 1 else -1.0
                grad[k] += v * dw.prod() / spacing
        e = (x - c) * spacing
        el = np.linalg.norm(e)
        clamped = x != c
        grad[clamped] = e[clamped] / el
        d[q] = val + el
        g[q] = grad
    return d, g


# --------------------------------------------------------------------------- rays


def naive_ray_hits(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray,
                   t_max: float = np.inf) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per ray: (t (k,), face (k,)) of every hit with 0 <= t < t_max, sorted; Moller-Trumbore over all faces."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    a = tri[:, 0]
    e1, e2 = tri[:, 1] - a, tri[:, 2] - a
    out = []
    for o, d in zip(np.asarray(origins, np.float64), np.asarray(directions, np.float64)):  # one ray at a time
        d = d / np.linalg.norm(d)
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        ok = det != 0
        det = np.where(ok, det, 1.0)
        s = o - a
        u = np.einsum("ij,ij->i", s, p) / det
        q = np.cross(s, e1)
        v = (q @ d) / det
        t = np.einsum("ij,ij->i", e2, q) / det
        hit = ok & (u >= 0) & (u <= 1) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t < t_max)
        f = np.flatnonzero(hit)
        order = np.argsort(t[f], kind="stable")
        out.append((t[f][order], f[order]))
    return out


# --------------------------------------------------------------------------- rasterizer


def naive_rasterize(meshes: list[tuple[np.ndarray, np.ndarray]], poses: np.ndarray, K: np.ndarray,
                    size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per pixel (centre at integer (x, y)), loop over every triangle of every mesh; keep the nearest.

    Barycentrics are found by solving the 2x2 system of the projected triangle,
    then made perspective-correct; depth is the camera z. Ties keep the first.
    """
    h, w = size
    depth = np.full((h, w), np.inf, np.float32)
    mesh_id = np.full((h, w), -1, np.int32)
    face_id = np.full((h, w), -1, np.int32)
    bary = np.zeros((h, w, 3), np.float32)
    ids, uv0, minv, zs = [], [], [], []
    for m, (v, f) in enumerate(meshes):
        vc = np.asarray(v, np.float64) @ poses[m][:3, :3].T + poses[m][:3, 3]
        for k, face in enumerate(np.asarray(f)):
            X = vc[face]
            if np.any(X[:, 2] < 1e-3):
                continue
            uv = (X @ K.T)[:, :2] / X[:, 2:3]
            M = np.array([[uv[1, 0] - uv[0, 0], uv[2, 0] - uv[0, 0]], [uv[1, 1] - uv[0, 1], uv[2, 1] - uv[0, 1]]])
            if np.linalg.det(M) == 0:
                continue
            ids.append((m, k))
            uv0.append(uv[0])
            minv.append(np.linalg.inv(M))
            zs.append(X[:, 2])
    if not ids:
        return {"depth": depth, "mesh_id": mesh_id, "face_id": face_id, "bary": bary}
    uv0, minv, zs = np.array(uv0), np.array(minv), np.array(zs)
    for y in range(h):
        for x in range(w):  # one pixel at a time, all triangles at once
            l12 = np.einsum("tij,tj->ti", minv, np.array([x, y]) - uv0)
            lam = np.column_stack([1 - l12.sum(1), l12])
            for t in np.flatnonzero(np.all(lam >= 0, axis=1)):  # in order: ties keep the first
                zz = np.float32(1.0 / np.sum(lam[t] / zs[t]))
                if zz < depth[y, x]:
                    depth[y, x] = zz
                    mesh_id[y, x], face_id[y, x] = ids[t]
                    q = lam[t] / zs[t]
                    bary[y, x] = q / q.sum()
    return {"depth": depth, "mesh_id": mesh_id, "face_id": face_id, "bary": bary}


def naive_shade(mesh_id: np.ndarray, face_id: np.ndarray, bary: np.ndarray, faces: np.ndarray,
                normals_cam: np.ndarray, albedo: dict, light: np.ndarray, ambient: float, m: int = 0) -> np.ndarray:
    """Colour (H, W, 3) float of mesh ``m``'s pixels (NaN elsewhere), smooth normals, one pixel at a time.

    ``albedo``: {"color": (3,)} or {"vertex": (V, 3) in [0, 1]} or {"uv": (V, 2), "texture": uint8, "bilinear": bool}.
    """
    h, w = mesh_id.shape
    out = np.full((h, w, 3), np.nan)
    for y in range(h):
        for x in range(w):
            if mesh_id[y, x] != m:
                continue
            idx = faces[face_id[y, x]]
            b = bary[y, x].astype(np.float64)
            n = b @ normals_cam[idx]
            shade = ambient + (1 - ambient) * abs(n @ light) / np.linalg.norm(n)
            if "color" in albedo:
                col = np.asarray(albedo["color"], float)
            elif "vertex" in albedo:
                col = b @ albedo["vertex"][idx]
            else:
                tex = albedo["texture"].astype(np.float64) / 255
                th, tw = tex.shape[:2]
                u, v = b @ albedo["uv"][idx]
                tx, ty = u * tw - 0.5, (1 - v) * th - 0.5
                if not albedo["bilinear"]:
                    col = tex[int(np.floor(ty + 0.5)) % th, int(np.floor(tx + 0.5)) % tw]
                else:
                    j, i = int(np.floor(tx)), int(np.floor(ty))
                    col = np.zeros(3)
                    for di, dj in ((0, 0), (0, 1), (1, 0), (1, 1)):
                        wgt = (1 - abs(ty - (i + di))) * (1 - abs(tx - (j + dj)))
                        col += wgt * tex[(i + di) % th, (j + dj) % tw]
            out[y, x] = col * shade
    return out


def naive_fit_box(model, v: int, Rz: np.ndarray, step: int, K: np.ndarray, min_iou: float,
                  box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """One view turned in-plane by each of ``Rz``: the rotations and translations that fit ``box`` (the per-view
    loop, from ``look_at``, that the all-pairs ``_fit_pairs`` replaced; the box arithmetic is shared)."""
    from inscene.models.objects.search import box_fit, centre_in_box
    from inscene.models.objects.viewpoints import look_at

    uc, vc, bw, bh = box
    f = 0.5 * (K[0, 0] + K[1, 1])
    Tv = look_at(model.directions[v], model.center, model.distance)
    Pr = ((model.points[v, ::step] - model.center) @ Tv[:3, :3].T)[None] @ Rz.transpose(0, 2, 1)
    k, iou = box_fit(Pr[..., 0].max(1) - Pr[..., 0].min(1), Pr[..., 1].max(1) - Pr[..., 1].min(1), bw, bh)
    keep = np.nonzero(iou >= min_iou)[0]
    R = Rz[keep] @ Tv[:3, :3]
    t = (f / k[keep])[:, None] * np.linalg.solve(K, np.array([uc, vc, 1.0]))[None] - R @ model.center
    centre_in_box(model.points[v, ::step], R, t, K, box)
    return R, t
