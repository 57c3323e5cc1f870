"""Pre- and post-processing of the hand detector, against naive twins and known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest


# -- anchors -------------------------------------------------------------------------

def test_palm_anchors_layout():
    from inscene.models.detector.anchors import ssd_anchors

    a = ssd_anchors()
    assert a.shape == (2016, 2)
    # stride-8 grid: 24x24 cells, 2 anchors each, row-major; then 12x12 cells, 6 each
    np.testing.assert_allclose(a[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[48], [0.5 / 24, 1.5 / 24])
    np.testing.assert_allclose(a[1152:1158], np.tile([0.5 / 12, 0.5 / 12], (6, 1)))
    np.testing.assert_allclose(a[-1], [11.5 / 12, 11.5 / 12])


# -- NMS -----------------------------------------------------------------------------

def _nms_naive(boxes, scores, thr):
    """Loop twin of the weighted NMS."""
    left = list(np.argsort(-scores, kind="stable"))
    out = []
    while left:
        best = left[0]
        members = []
        for j in left:
            b, c = boxes[best], boxes[j]
            iw = max(0.0, min(b[2], c[2]) - max(b[0], c[0]))
            ih = max(0.0, min(b[3], c[3]) - max(b[1], c[1]))
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (c[2] - c[0]) * (c[3] - c[1]) - inter
            if j == best or inter / union > thr:
                members.append(j)
        w = scores[members] / scores[members].sum()
        out.append(((boxes[members] * w[:, None]).sum(0), scores[best]))
        left = [j for j in left if j not in members]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_nms_matches_naive_twin(seed):
    from inscene.models.detector.nms import nms

    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (4, 2))
    pick = rng.integers(0, 4, 40)
    c = centres[pick] + rng.normal(0, 0.02, (40, 2))
    s = rng.uniform(0.05, 0.2, (40, 1))
    boxes = np.concatenate([c - s, c + s], axis=1)
    scores = rng.uniform(0.5, 1.0, 40)
    got_b, got_s, got_e = nms(boxes, scores, 0.3, weighted=True, extras=boxes[:, :2].copy())
    want = _nms_naive(boxes, scores, 0.3)
    assert len(got_s) == len(want)
    for gb, gs, ge, (wb, ws) in zip(got_b, got_s, got_e, want):
        np.testing.assert_allclose(gb, wb, atol=1e-6)
        np.testing.assert_allclose(ge, wb[:2], atol=1e-6)
        assert gs == pytest.approx(ws)


def test_plain_nms_keeps_the_best_box():
    from inscene.models.detector.nms import nms

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    b, s, _ = nms(boxes, np.array([0.6, 0.9, 0.7]), 0.3, weighted=False)
    np.testing.assert_allclose(b, [[1, 1, 11, 11], [50, 50, 60, 60]])
    np.testing.assert_allclose(s, [0.9, 0.7])


# -- palm decoding ---------------------------------------------------------------------

def test_decode_palms_places_a_synthetic_detection():
    from inscene.models.detector.anchors import ssd_anchors
    from inscene.models.detector.imaging import Letterbox
    from inscene.models.detector.palm import decode_palms

    anchors = ssd_anchors()
    raw = np.zeros((2016, 18), np.float32)
    logits = np.full((2016, 1), -20.0, np.float32)
    k = 1152 + 6 * (12 * 5 + 7)  # a stride-16 anchor, cell (row 5, col 7)
    raw[k, :4] = [6.0, -3.0, 48.0, 40.0]  # offset (px of the 192 input) and size
    raw[k, 4:] = np.arange(14) - 7.0
    logits[k] = 3.0
    lb = Letterbox(192, 0.3, 0.0, 21.0)  # e.g. a 640x570 image scaled by 0.3, padded on top
    (p,) = decode_palms(raw, logits, lb)
    cx = (anchors[k, 0] * 192 + 6.0 - 0.0) / 0.3
    cy = (anchors[k, 1] * 192 - 3.0 - 21.0) / 0.3
    np.testing.assert_allclose(p.box, [cx - 80, cy - 66.6667, cx + 80, cy + 66.6667], rtol=1e-5)
    np.testing.assert_allclose(p.keypoints[0], [(anchors[k, 0] * 192 - 7) / 0.3, (anchors[k, 1] * 192 - 6 - 21) / 0.3],
                               rtol=1e-5)
    assert p.score == pytest.approx(1 / (1 + math.exp(-3.0)))


# -- image sampling ------------------------------------------------------------------------

def _crop_naive(image, cx, cy, side, angle, size):
    """Loop twin: bilinear sample of each crop pixel, 0 outside."""
    h, w = image.shape[:2]
    out = np.zeros((size, size, 3))
    c, s = math.cos(angle), math.sin(angle)
    for v in range(size):
        for u in range(size):
            lx = ((u + 0.5) / size - 0.5) * side
            ly = ((v + 0.5) / size - 0.5) * side
            x = cx + lx * c - ly * s - 0.5
            y = cy + lx * s + ly * c - 0.5
            x0, y0 = math.floor(x), math.floor(y)
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    if 0 <= xx < w and 0 <= yy < h:
                        out[v, u] += wx * wy * image[yy, xx]
    return out / 255.0


@pytest.mark.parametrize("cx,cy,side,angle,size", [(20.3, 15.7, 24.0, 0.4, 12), (5.0, 30.0, 40.0, -2.5, 16),
                                                    (31.5, 20.5, 18.0, 0.0, 18), (16.0, 16.0, 100.0, 1.0, 10)])
def test_rotated_crop_matches_naive_twin(cx, cy, side, angle, size):
    from inscene.models.detector.imaging import crop_rotated

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    got = crop_rotated(img, cx, cy, side, angle, size)
    assert got.shape == (size, size, 3) and got.dtype == np.float32
    if side > 2 * size:  # box-filtered first: compare with the twin on the pre-filtered image
        f = int(side / size / 1.5) + 1
        hp, wp = -(-40 // f), -(-48 // f)
        padded = np.zeros((hp * f, wp * f, 3))
        padded[:40, :48] = img
        cnt = np.zeros((hp * f, wp * f))
        cnt[:40, :48] = 1
        pooled = padded.reshape(hp, f, wp, f, 3).sum((1, 3)) / cnt.reshape(hp, f, wp, f).sum((1, 3))[..., None]
        want = _crop_naive(pooled, cx / f, cy / f, side / f, angle, size)
        # The box filter only covers the square's bounding region; compare where it is inside the image.
        np.testing.assert_allclose(got[2:-2, 2:-2], want[2:-2, 2:-2], atol=1e-4)
    else:
        np.testing.assert_allclose(got, _crop_naive(img, cx, cy, side, angle, size), atol=1e-5)


def test_letterbox_maps_back_to_the_image():
    from inscene.models.detector.imaging import letterbox

    img = np.zeros((300, 500, 3), np.uint8)
    img[100:140, 300:360] = 255  # a white block
    x, lb = letterbox(img, 100)
    assert x.shape == (100, 100, 3) and lb.scale == pytest.approx(0.2) and lb.pad_y == pytest.approx(20.0)
    ys, xs = np.nonzero(x[..., 0] > 0.5)
    centre = lb.to_image(np.array([(xs.mean() + 0.5) / 100, (ys.mean() + 0.5) / 100]))
    np.testing.assert_allclose(centre, [330, 120], atol=2.5)
    assert x[:19].max() == 0 and x[81:].max() == 0  # black border above and below


def test_bad_images_raise_one_line_input_errors():
    from inscene.engine.errors import InputError
    from inscene.models.detector.imaging import check_image

    with pytest.raises(InputError, match="frame: expected an RGB image"):
        check_image(np.zeros((10, 10)), "frame")
    with pytest.raises(InputError, match="uint8"):
        check_image(np.zeros((10, 10, 3), np.float32))


# -- rectangles ------------------------------------------------------------------------------

def test_up_angle_and_rect_to_image():
    from inscene.models.detector.rects import HandRect, up_angle

    assert up_angle(np.array([0, 0]), np.array([0, -5])) == pytest.approx(0.0)  # already up
    assert up_angle(np.array([0, 0]), np.array([5, 0])) == pytest.approx(math.pi / 2)  # pointing right
    assert abs(up_angle(np.array([0, 0]), np.array([0, 5]))) == pytest.approx(math.pi)  # pointing down
    r = HandRect(100.0, 50.0, 20.0, math.pi / 2)
    # the crop's top centre is where the fingers point: to the right of the centre
    np.testing.assert_allclose(r.to_image(np.array([0.5, 0.0])), [110.0, 50.0], atol=1e-5)
    np.testing.assert_allclose(r.corners()[0], [110.0, 40.0], atol=1e-5)


def test_rect_from_palm_and_landmarks_cover_an_upright_hand():
    from inscene.models.detector.rects import rect_from_landmarks, rect_from_palm

    kp = np.zeros((7, 2))
    kp[0], kp[2] = (100, 120), (100, 80)  # wrist below the middle finger base
    r = rect_from_palm(np.array([80, 80, 120, 120.0]), kp)
    assert r.angle == pytest.approx(0.0)
    assert (r.cx, r.cy) == pytest.approx((100.0, 80.0))  # moved half a box towards the fingers
    assert r.side == pytest.approx(104.0)
    # a synthetic upright hand: wrist at the bottom, fingers straight up
    pts = np.zeros((21, 2))
    pts[0] = (90, 200)
    for f, x in enumerate((70, 90, 110, 130)):  # index..little bases at y 150, tips at y 100
        base = 5 + 4 * f
        pts[base:base + 4] = [(x, 150), (x, 135), (x, 118), (x, 100)]
    pts[1:5] = [(80, 190), (65, 175), (55, 160), (50, 150)]
    r2 = rect_from_landmarks(pts)
    assert abs(r2.angle) < 0.05
    lo, hi = r2.bbox()[:2], r2.bbox()[2:]
    assert np.all(pts >= lo) and np.all(pts <= hi)  # the whole hand fits in the next crop


# -- handedness ------------------------------------------------------------------------------

def test_handedness_vote_is_steady_and_sides_are_distinct():
    from inscene.models.detector.handedness import HandednessVote, assign_sides

    v = HandednessVote()
    for _ in range(20):
        v.update(0.95)
    for _ in range(3):  # a few ambiguous or wrong frames do not flip the label
        v.update(0.2)
    assert v.side == "right" and v.p_right > 0.9
    for _ in range(60):  # a sustained change does
        v.update(0.05)
    assert v.side == "left"
    a, b = HandednessVote(), HandednessVote()
    a.update(0.99)
    b.update(0.6)
    assert assign_sides([a, b]) == ["right", "left"]
    assert assign_sides([a, b], distinct=False) == ["right", "right"]
