"""Synthetic demo faces: the app's default data and what fast tests train on.

`make_demo(n, seed)` draws cartoon 48x48 grey faces in FER2013's format. Each class has its
own mouth curve, brow angle and height, and eye opening (happy: smile and squint; sad: frown
and brows raised inside; surprise: raised brows, wide eyes, round open mouth; ...). Every
drawing parameter is jittered per face, neighbouring classes overlap a little (fear/surprise,
sad/neutral, angry/disgust), and pose, lighting, contrast and pixel noise vary, so a small
CNN learns it quickly but does not get it trivially perfect. A few exact duplicates across
splits and a few washed-out faces are planted on purpose so that the data-quality checks
have something to find. It is not real data: the UI must say so (`FerDataset.synthetic`).
"""

from __future__ import annotations

import numpy as np

from fer_core.data.dataset import FerDataset, split_codes
from fer_core.labels import EMOTIONS, IMG_SIZE, NUM_CLASSES, SPLITS

# Per class: mouth curvature (+ = corners up), mouth opening, mouth width, mouth tilt,
# brow height above the eye, brow slope (+ = inner ends down, i.e. frowning), eye opening.
# Units are fractions of the face's half-height; each value is jittered per face.
_CLASS_PARAMS: dict[str, dict[str, float]] = {
    "angry": dict(curve=-0.05, open=0.00, width=0.34, tilt=0.0, brow=0.13, slope=0.11, eye=0.75),
    "disgust": dict(curve=-0.07, open=0.02, width=0.32, tilt=0.10, brow=0.15, slope=0.07, eye=0.6),
    "fear": dict(curve=-0.06, open=0.09, width=0.42, tilt=0.0, brow=0.25, slope=-0.06, eye=1.35),
    "happy": dict(curve=0.16, open=0.03, width=0.46, tilt=0.0, brow=0.19, slope=0.0, eye=0.6),
    "sad": dict(curve=-0.12, open=0.00, width=0.36, tilt=0.0, brow=0.19, slope=-0.08, eye=0.8),
    "surprise": dict(curve=0.0, open=0.17, width=0.26, tilt=0.0, brow=0.29, slope=0.0, eye=1.5),
    "neutral": dict(curve=0.0, open=0.00, width=0.38, tilt=0.0, brow=0.19, slope=0.0, eye=1.0),
}
_JITTER = dict(curve=0.04, open=0.025, width=0.04, tilt=0.04, brow=0.035, slope=0.035, eye=0.18)
# Relative class frequencies: disgust is rare, as in FER2013 (there about 1.5 %).
_CLASS_WEIGHTS = np.array([1.0, 0.35, 1.0, 1.4, 1.1, 0.9, 1.1])
_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
_DUPLICATE_FRACTION = 0.01  # planted copies of Training faces into the test splits
_LOW_CONTRAST_FRACTION = 0.005  # planted washed-out faces


def make_demo(n: int = 1400, seed: int = 0) -> FerDataset:
    """`n` synthetic faces with Training/PublicTest/PrivateTest splits (80/10/10).

    Every class is present in every split (so `n` must be at least 3 per class, 21 in all).
    The same `n` and `seed` always give the same faces.
    """
    if n < 3 * NUM_CLASSES:
        raise ValueError(f"make_demo needs n >= {3 * NUM_CLASSES} (3 per class), got {n}")
    rng = np.random.default_rng(seed)
    per_class = _class_sizes(n)
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    usage = np.empty(n, dtype="<U11")
    start = 0
    for size in per_class:  # stratified 80/10/10 with at least one face per split and class
        n_test = max(1, round(size * _SPLIT_FRACTIONS[2]))
        n_val = max(1, round(size * _SPLIT_FRACTIONS[1]))
        parts = [size - n_val - n_test, n_val, n_test]
        usage[start : start + size] = np.repeat(np.array(SPLITS), parts)
        start += size
    order = rng.permutation(n)
    labels, usage = labels[order], usage[order]
    # Keep the splits contiguous (Training first, as in Kaggle's file) so split() gives views.
    by_split = np.argsort(split_codes(usage, SPLITS), kind="stable")
    labels, usage = labels[by_split], usage[by_split]

    images = _draw_faces(labels, rng)
    _plant_defects(images, labels, usage, rng)
    return FerDataset(
        images=images,
        labels=labels.astype(np.int64),
        usage=usage,
        source="demo",
        synthetic=True,
    )


def _class_sizes(n: int) -> np.ndarray:
    """Split `n` by the class weights, with at least 3 faces per class."""
    weights = _CLASS_WEIGHTS / _CLASS_WEIGHTS.sum()
    sizes = np.maximum(3, np.floor(weights * n).astype(int))
    while sizes.sum() > n:
        sizes[np.argmax(sizes)] -= 1
    sizes[np.argsort(-weights)[: n - sizes.sum()]] += 1
    return sizes


def _draw_faces(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render one face per label, vectorised over the batch: arrays are (N, 48, 48) floats
    while drawing (a few MB for the demo sizes), quantised to uint8 at the end."""
    n = len(labels)

    def param(name: str) -> np.ndarray:
        mean = np.array([_CLASS_PARAMS[e][name] for e in EMOTIONS])[labels]
        return (mean + rng.normal(0.0, _JITTER[name], n))[:, None, None]

    def col(values: np.ndarray) -> np.ndarray:
        return values[:, None, None]

    curve, mouth_open, width, tilt = param("curve"), param("open"), param("width"), param("tilt")
    brow_h, slope, eye_open = param("brow"), param("slope"), param("eye")
    mouth_open = np.clip(mouth_open, 0.0, None)
    eye_open = np.clip(eye_open, 0.35, None)

    y, x = np.mgrid[0:IMG_SIZE, 0:IMG_SIZE].astype(np.float32)
    cx = col(IMG_SIZE / 2 + rng.normal(0, 1.8, n))
    cy = col(IMG_SIZE / 2 + 1 + rng.normal(0, 1.8, n))
    ry = col(rng.uniform(17.5, 22.5, n))  # face half-height in pixels
    rx = ry * col(rng.uniform(0.72, 0.86, n))
    angle = col(rng.normal(0, 0.08, n))  # head roll, radians
    # Face-centred coordinates in units of the half-height, rotated by the head roll.
    dx, dy = (x - cx) / ry, (y - cy) / ry
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    aspect = rx / ry

    skin = col(rng.uniform(120, 210, n))
    background = col(rng.uniform(20, 200, n)) + col(rng.normal(0, 25, n)) * (x / IMG_SIZE - 0.5)
    dark = skin * col(rng.uniform(0.2, 0.45, n))  # features: eyes, brows, mouth
    light = col(rng.normal(0, 0.35, n))  # side lighting across the face
    face = (u / aspect) ** 2 + v**2 <= 1.0
    img = np.where(face, skin * (1 + 0.25 * light * u) - 18 * np.clip(v, 0, 1) ** 2, background)

    feature = np.zeros_like(img, dtype=bool)
    for side in (-1.0, 1.0):
        ex, ey = side * 0.36 * aspect, -0.22
        feature |= ((u - ex) / 0.16) ** 2 + ((v - ey) / (0.075 * eye_open)) ** 2 <= 1.0
        # Brow: a thick segment above the eye; slope > 0 lowers its inner (nose-side) end.
        bx0, bx1 = ex - side * 0.17, ex + side * 0.17  # inner end, outer end
        by0 = ey - 0.12 - brow_h + slope
        by1 = ey - 0.12 - brow_h - slope * 0.3
        feature |= _near_segment(u, v, bx0, by0, bx1, by1, 0.045)
    # Mouth: a parabola (smile/frown) with a tilt, or an open ellipse for open mouths.
    my = 0.45
    t = u / width
    inside = np.abs(t) <= 1.0
    lip_y = my - curve * t**2 + tilt * t
    feature |= inside & (np.abs(v - lip_y) <= 0.05 + mouth_open * np.sqrt(np.clip(1 - t**2, 0, 1)))
    # Disgust wrinkles the nose: two short dark lines beside the nose bridge.
    nose = (np.abs(np.abs(u) - 0.09) <= 0.025) & (v > 0.02) & (v < 0.16)
    wrinkle = col(rng.uniform(0, 1, n)) < np.where(labels == EMOTIONS.index("disgust"), 0.8, 0.1)
    feature |= nose & wrinkle[:, :, :1]
    img = np.where(feature & face, dark, img)
    # Nose shadow, the same for every class.
    img = np.where(face & (np.abs(u) <= 0.04) & (v > -0.1) & (v < 0.2), img * 0.85, img)

    contrast = col(rng.uniform(0.6, 1.15, n))
    img = (img - img.mean(axis=(1, 2), keepdims=True)) * contrast + img.mean(
        axis=(1, 2), keepdims=True
    )
    img = _box_blur(img) + rng.normal(0, 1, img.shape) * col(rng.uniform(4, 14, n))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _near_segment(u, v, x0, y0, x1, y1, thickness: float) -> np.ndarray:
    """True where (u, v) lies within `thickness` of the segment (x0, y0)-(x1, y1)."""
    sx, sy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * sx + (v - y0) * sy) / (sx**2 + sy**2), 0.0, 1.0)
    return (u - x0 - t * sx) ** 2 + (v - y0 - t * sy) ** 2 <= thickness**2


def _box_blur(img: np.ndarray) -> np.ndarray:
    """3x3 mean filter (edge-padded): softens the hard drawing edges like a camera would."""
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = np.zeros_like(img)
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + IMG_SIZE, dx : dx + IMG_SIZE]
    return out / 9.0


def _plant_defects(
    images: np.ndarray, labels: np.ndarray, usage: np.ndarray, rng: np.random.Generator
) -> None:
    """Copy a few Training faces over test faces of the same class (a cross-split leak) and
    wash out a few faces, in place, so the quality checks have known things to find."""
    train = np.flatnonzero(usage == SPLITS[0])
    test = np.flatnonzero(usage != SPLITS[0])
    for target in rng.choice(test, size=int(len(images) * _DUPLICATE_FRACTION), replace=False):
        same_class = train[labels[train] == labels[target]]
        images[target] = images[rng.choice(same_class)]
    for target in rng.choice(train, size=int(len(images) * _LOW_CONTRAST_FRACTION), replace=False):
        level = images[target].mean()
        images[target] = np.clip(level + (images[target] - level) * 0.08, 0, 255).astype(np.uint8)
