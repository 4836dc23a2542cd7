"""Face detection, landmarks and FFHQ alignment (micromotion.faces).

The geometry tests need no dlib; the detection tests skip without it (CI installs it).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from helpers import DATA
from micromotion import MicromotionError
from micromotion import faces as F
from micromotion.faces import detect, ffhq


@pytest.fixture(scope="module")
def needs_dlib():
    pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut())  # [512, 512, 3] uint8


def template(a: float = 1.0, m: float = 2.0) -> np.ndarray:
    """68 landmarks: eyes at (-a, 0) and (a, 0), mouth corners at (-a/2, m) and (a/2, m)."""
    lm = np.zeros((68, 2))
    lm[:, 1] = 1.0  # points the recipe ignores
    t = np.arange(6) / 6 * 2 * np.pi
    ring = 0.2 * np.stack([np.cos(t), np.sin(t)], 1)  # [6, 2] around each eye centre
    lm[36:42] = ring + np.array([-a, 0.0])
    lm[42:48] = ring[::-1] + np.array([a, 0.0])
    lm[48] = [-a / 2, m]
    lm[54] = [a / 2, m]
    return lm


def similarity(points: np.ndarray, angle_deg: float, scale: float, shift) -> np.ndarray:
    t = math.radians(angle_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return points @ rot.T * scale + np.asarray(shift, dtype=float)


# ---------------------------------------------------------------------------------------------
# Pure geometry


def test_quad_of_an_upright_template():
    # eye_to_eye (2, 0), eye_to_mouth (0, 2): x = (2 + 2, 0) normalised * max(2*2, 2*1.8) = 4,
    # centre = eye midpoint + 0.1 * eye_to_mouth = (0, 0.2).
    quad = F.ffhq_quad(template())
    c, s = np.array([0.0, 0.2]), 4.0
    expected = c + s * np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]])
    np.testing.assert_allclose(quad, expected, atol=1e-12)
    assert F.quad_size(quad) == pytest.approx(8.0)


def test_mouth_distance_sets_the_size_when_larger():
    quad = F.ffhq_quad(template(a=1.0, m=5.0))  # |eye_to_mouth| * 1.8 = 9 > |eye_to_eye| * 2 = 4
    assert F.quad_size(quad) == pytest.approx(18.0)
    np.testing.assert_allclose(quad.mean(0), [0.0, 0.5], atol=1e-12)


@pytest.mark.parametrize(
    ("angle", "scale", "shift"),
    [
        (0.0, 37.0, (300, 200)),
        (23.0, 12.5, (-40, 80)),
        (-140.0, 3.0, (0.5, 0.25)),
        (90.0, 100, (0, 0)),
    ],
)
def test_quad_follows_a_similarity_transform(angle, scale, shift):
    lm = template(a=1.3, m=1.9)
    moved = similarity(lm, angle, scale, shift)
    np.testing.assert_allclose(
        F.ffhq_quad(moved), similarity(F.ffhq_quad(lm), angle, scale, shift), atol=1e-9
    )
    # The x-axis (top-left -> top-right) turns with the face.
    q = F.ffhq_quad(moved)
    edge = q[3] - q[0]
    assert math.degrees(math.atan2(edge[1], edge[0])) == pytest.approx(angle, abs=1e-9)


def test_quad_transform_maps_the_aligned_corners_onto_the_quad():
    quad = F.ffhq_quad(similarity(template(), 31.0, 40.0, (500, 400)))
    size = 256
    M = F.quad_transform(quad, size)
    corners = np.array([[0, 0], [0, size], [size, size], [size, 0]], dtype=float) - 0.5
    np.testing.assert_allclose(F.map_points(M, corners), quad, atol=1e-9)
    np.testing.assert_allclose(F.map_points(M, [(size - 1) / 2] * 2), quad.mean(0), atol=1e-9)
    back = F.map_points(np.linalg.inv(M), quad)
    np.testing.assert_allclose(back, corners, atol=1e-9)


def test_degenerate_landmarks_raise():
    with pytest.raises(MicromotionError, match="degenerate"):
        F.ffhq_quad(np.zeros((68, 2)))
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        F.ffhq_quad(np.zeros((5, 2)))


def blob_image(h: int, w: int, centre, sigma: float) -> np.ndarray:
    """A dark photo with one smooth bright blob: its centroid can be located to sub-pixel."""
    ys, xs = np.mgrid[:h, :w]
    g = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    img = np.clip(20 + 220 * g, 0, 255).round().astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def centroid(img: np.ndarray) -> np.ndarray:
    v = img[..., 0].astype(float) - np.median(img[..., 0])
    v = np.clip(v - 0.2 * v.max(), 0, None)  # ignore the background and the padding
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(xs * v).sum(), (ys * v).sum()]) / v.sum()


@pytest.mark.parametrize(
    ("shape", "angle", "scale", "size", "what"),
    [
        ((500, 600), 17.0, 30.0, 64, "plain crop"),
        ((1400, 1500), -25.0, 100.0, 64, "shrink x6 (quad 800 px for a 64 px output)"),
        ((400, 500), 8.0, 40.0, 48, "quad leaves the photo: padding"),
    ],
)
def test_aligned_pixels_agree_with_the_transform(shape, angle, scale, size, what):
    h, w = shape
    # With padding, the top of the quad lies above the photo (the blob stays well inside: the
    # recipe also softens the photo's own pixels near its edge).
    lm = similarity(template(), angle, scale, (w * 0.45, h * (0.3 if "padding" in what else 0.45)))
    assert ("padding" in what) == (F.ffhq_quad(lm)[:, 1].min() < 0)
    quad = F.ffhq_quad(lm)
    # A blob a little off the quad's centre, in photo pixels.
    spot = quad.mean(0) + (quad[3] - quad[0]) * 0.12 + (quad[1] - quad[0]) * 0.07
    sigma = F.quad_size(quad) * 0.04
    photo = blob_image(h, w, spot, sigma)
    aligned = F.align_face(photo, lm, size=size)
    assert aligned.image.shape == (size, size, 3) and aligned.image.dtype == np.uint8
    # After a shrink the recipe samples a region up to half a shrunken pixel off the nominal
    # quad (we follow it); `quad` reports the region actually sampled.
    shrink = math.floor(F.quad_size(quad) / size * 0.5)
    np.testing.assert_allclose(aligned.quad, quad, atol=shrink if shrink > 1 else 1e-9)
    expected = aligned.to_aligned(spot)
    # Sub-pixel: the crop is where `transform` says it is (shrinking included).
    np.testing.assert_allclose(centroid(aligned.image), expected, atol=0.15, err_msg=what)
    np.testing.assert_allclose(aligned.to_original(expected), spot, atol=1e-9)
    np.testing.assert_allclose(aligned.aligned_landmarks, aligned.to_aligned(lm), atol=1e-12)


def test_alignment_is_deterministic_and_read_only():
    lm = similarity(template(), 10.0, 30.0, (150, 120))
    photo = np.random.default_rng(0).integers(0, 256, (240, 300, 3), dtype=np.uint8)
    a = F.align_face(photo, lm, size=32)
    b = F.align_face(photo, lm, size=32)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.transform, b.transform)
    with pytest.raises(ValueError):
        a.quad[0, 0] = 1.0


def test_recipe_transform_size_gives_nearly_the_same_crop():
    # The automatic transform_size (here the output size) against the recipe's 4096.
    lm = similarity(template(), 5.0, 30.0, (150, 130))
    photo = blob_image(260, 300, (150, 140), 25.0)
    auto = F.align_face(photo, lm, size=128).image.astype(float)
    recipe = F.align_face(photo, lm, size=128, transform_size=4096).image.astype(float)
    assert np.abs(auto - recipe).mean() < 0.5


def test_padding_blur_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    for shape, sigma in [((40, 70, 3), 3.3), ((15, 22, 3), 7.0)]:  # second: kernel > image
        x = (rng.random(shape) * 255).astype(np.float32)
        expected = ndimage.gaussian_filter(x, [sigma, sigma, 0])
        np.testing.assert_allclose(ffhq._gaussian_blur(x, sigma), expected, atol=2e-3)


def test_bad_image_arrays_are_rejected():
    lm = template() * 20 + 50
    with pytest.raises(ValueError, match="uint8"):
        F.align_face(np.zeros((100, 100), np.uint8), lm)
    with pytest.raises(ValueError, match="uint8"):
        F.align_face(np.zeros((100, 100, 3), np.float32), lm)


def test_missing_dlib_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    with pytest.raises(MicromotionError, match="pip install dlib"):
        F.check_backend()


def test_missing_model_files_are_a_one_line_error(monkeypatch):
    monkeypatch.setattr(detect.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MicromotionError, match="pip install face_recognition_models"):
        detect._model_file("shape_predictor_68_face_landmarks.dat")


# ---------------------------------------------------------------------------------------------
# Detection and alignment of a real photo (dlib)


def level_and_centre(img: np.ndarray):
    """Detect the face in an aligned crop: its own FFHQ quad's centre, tilt and side."""
    found = F.detect_faces(img)
    assert len(found) == 1
    q = F.ffhq_quad(found[0].landmarks)
    edge = q[3] - q[0]
    return q.mean(0), math.degrees(math.atan2(edge[1], edge[0])), F.quad_size(q)


def test_astronaut_detect_and_align(needs_dlib, astronaut):
    found = F.detect_faces(astronaut)
    assert len(found) == 1
    face = found[0]
    assert face.detector == "hog" and face.score > 0 and face.area > 60 * 60
    left, top, right, bottom = face.box
    lm = face.landmarks
    assert lm.shape == (68, 2) and lm.dtype == np.float64
    # All points near the box; eyes above the nose tip above the mouth; left eye on the left.
    assert (lm[:, 0] > left - 20).all() and (lm[:, 0] < right + 20).all()
    assert (lm[:, 1] > top - 40).all() and (lm[:, 1] < bottom + 20).all()
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    assert eye_l[0] < eye_r[0] and max(eye_l[1], eye_r[1]) < lm[30, 1] < lm[62, 1]

    size = 256
    (aligned,) = F.align_image(astronaut, size=size)
    assert aligned.image.shape == (size, size, 3) and aligned.index == 0
    assert aligned.face is not None and aligned.face.box == face.box
    np.testing.assert_allclose(aligned.quad, F.ffhq_quad(lm))
    corners = np.array([[0, 0], [0, size], [size, size], [size, 0]], dtype=float) - 0.5
    np.testing.assert_allclose(aligned.to_original(corners), aligned.quad, atol=1e-9)

    # The aligned face, detected again, sits where FFHQ puts faces: its own quad fills the crop.
    centre, tilt, side = level_and_centre(aligned.image)
    assert np.abs(centre - (size - 1) / 2).max() < 0.02 * size
    assert abs(tilt) < 2.0
    assert side == pytest.approx(size, rel=0.10)
    assert np.array_equal(F.align_image(astronaut, size=size)[0].image, aligned.image)


def test_rotated_astronaut_is_levelled(needs_dlib, astronaut):
    from PIL import Image

    tilted = np.asarray(Image.fromarray(astronaut).rotate(20, resample=Image.BICUBIC))
    (aligned,) = F.align_image(tilted, size=256, cnn_fallback=False)
    _, tilt, _ = level_and_centre(aligned.image)
    assert abs(tilt) < 2.0


def test_face_choice_and_too_small(needs_dlib, astronaut):
    pair = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))
    found = F.detect_faces(pair)
    assert len(found) == 2
    both = F.align_image(pair, size=64, all_faces=True)
    assert [a.index for a in both] == [0, 1]
    assert both[0].face.box != both[1].face.box
    second = F.align_image(pair, size=64, face=1)[0]
    assert second.face.box == found[1].box
    with pytest.raises(MicromotionError, match=r"face 5 requested but 2 faces found \(0-1\)"):
        F.align_image(pair, size=64, face=5)
    with pytest.raises(MicromotionError, match=r"face too small \(\d+ px"):
        F.align_image(astronaut, size=64, min_face=10_000)


def test_no_face(needs_dlib):
    gray = np.full((120, 160, 3), 128, np.uint8)
    assert F.detect_faces(gray) == []
    with pytest.raises(MicromotionError, match="^no face found$"):
        F.align_image(gray, size=64)


# ----------------------------------------------------------------------------------------------
# Parity with the FFHQ recipe itself.


@pytest.mark.parametrize("case", ["plain", "shrink", "padding"])
def test_matches_the_ffhq_recipe_pixel_for_pixel(case):
    """Our crops equal those of NVIDIA's ``recreate_aligned_images`` (ffhq-dataset).

    ``tests/data/ffhq_recipe_reference.npz`` holds, for three photos made from the astronaut,
    the dlib landmarks and the 64 px crop that NVIDIA's recipe (download_ffhq.py at 193deb6,
    run outside this repository with transform_size 4096) made from them: a plain crop, one
    through the shrink step (the photo ×3, nearest-neighbour), and one through the
    reflect-pad-and-blur step (a cut-out with the face at its edge).
    """
    skdata = pytest.importorskip("skimage.data")
    astro = skdata.astronaut()
    photos = {
        "plain": astro,
        "shrink": np.repeat(np.repeat(astro, 3, axis=0), 3, axis=1),
        "padding": np.ascontiguousarray(astro[40:300, 150:330]),
    }
    reference = np.load(DATA / "ffhq_recipe_reference.npz")
    ours = F.align_face(
        photos[case], reference[f"{case}_landmarks"], size=64, transform_size=4096
    ).image
    diff = np.abs(ours.astype(int) - reference[f"{case}_aligned"].astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
