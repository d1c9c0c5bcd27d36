"""`tf.data` input pipelines from uint8 face arrays: shuffle, batch, augment, prefetch.

Images stay uint8 until a batch is formed; each batch becomes float32 grey levels in
0..255 (the models rescale inside), labels become one-hot float32 so label smoothing and
mixup work with one loss. Augmentation is vectorised per batch: shift, rotation, zoom and
horizontal flip are folded into a single projective transform per image (one op instead
of four), then brightness/contrast and random erasing. Every augmentation can be turned
off on its own; their options and limits are `fer_core.config.AugmentConfig`'s.
"""

from __future__ import annotations

import math

import fer_core.cpu  # noqa: F401  (TF flags before TensorFlow loads)
import numpy as np
import tensorflow as tf

from fer_core.config import AugmentConfig
from fer_core.labels import IMG_SIZE, NUM_CLASSES


def balanced_class_weights(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Weights n / (k * count_c), as scikit-learn's "balanced"; absent classes get weight 0."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def _uniform(batch: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.uniform([batch], low, high, dtype=tf.float32)


def _geometric(x: tf.Tensor, aug: AugmentConfig) -> tf.Tensor:
    """Flip, shift, rotation and zoom as one output->input projective transform per image."""
    n = tf.shape(x)[0]
    theta = _uniform(n, -aug.rotation, aug.rotation) * (math.pi / 180.0)
    scale = _uniform(n, 1.0 - aug.zoom, 1.0 + aug.zoom)
    tx = _uniform(n, -aug.shift, aug.shift) * IMG_SIZE
    ty = _uniform(n, -aug.shift, aug.shift) * IMG_SIZE
    flip = tf.ones([n]) if not aug.flip else tf.where(_uniform(n, 0, 1) < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(theta) / scale, tf.sin(theta) / scale
    a0, a1, b0, b1 = flip * cos, -sin, flip * sin, cos
    c = (IMG_SIZE - 1) / 2.0
    a2 = c + tx - a0 * c - a1 * c
    b2 = c + ty - b0 * c - b1 * c
    zeros = tf.zeros([n])
    transform = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transform, output_shape=[IMG_SIZE, IMG_SIZE],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT",
    )


def _photometric(x: tf.Tensor, aug: AugmentConfig) -> tf.Tensor:
    n = tf.shape(x)[0]
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    contrast = tf.reshape(_uniform(n, 1.0 - aug.contrast, 1.0 + aug.contrast), [-1, 1, 1, 1])
    offset = tf.reshape(_uniform(n, -aug.brightness, aug.brightness) * 255.0, [-1, 1, 1, 1])
    return tf.clip_by_value((x - mean) * contrast + mean + offset, 0.0, 255.0)


def _erase(x: tf.Tensor, probability: float) -> tf.Tensor:
    """Random erasing: one rectangle (2-25% of the area, aspect 0.3-3.3) filled with noise."""
    n = tf.shape(x)[0]
    area = _uniform(n, 0.02, 0.25) * IMG_SIZE * IMG_SIZE
    aspect = tf.exp(_uniform(n, math.log(0.3), math.log(3.3)))
    h = tf.minimum(tf.sqrt(area * aspect), IMG_SIZE - 1.0)
    w = tf.minimum(tf.sqrt(area / aspect), IMG_SIZE - 1.0)
    y0 = _uniform(n, 0, 1) * (IMG_SIZE - h)
    x0 = _uniform(n, 0, 1) * (IMG_SIZE - w)
    grid = tf.range(IMG_SIZE, dtype=tf.float32)
    rows = (grid[None, :] >= y0[:, None]) & (grid[None, :] < (y0 + h)[:, None])
    cols = (grid[None, :] >= x0[:, None]) & (grid[None, :] < (x0 + w)[:, None])
    chosen = _uniform(n, 0, 1) < probability
    mask = rows[:, :, None] & cols[:, None, :] & chosen[:, None, None]
    noise = tf.random.uniform(tf.shape(x), 0.0, 255.0)
    return tf.where(mask[..., None], noise, x)


def augment_batch(x: tf.Tensor, aug: AugmentConfig) -> tf.Tensor:
    """Augment a float32 batch (B, 48, 48, 1) of grey levels 0..255."""
    if aug.flip or aug.shift or aug.rotation or aug.zoom:
        x = _geometric(x, aug)
    if aug.brightness or aug.contrast:
        x = _photometric(x, aug)
    if aug.erasing:
        x = _erase(x, aug.erasing)
    return x


def _mixup(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, alpha: float):
    """Mixup with one Beta(alpha, alpha) coefficient per batch, mixed with a shuffled copy."""
    g1 = tf.random.gamma([], alpha)
    g2 = tf.random.gamma([], alpha)
    lam = g1 / (g1 + g2)
    perm = tf.random.shuffle(tf.range(tf.shape(x)[0]))
    x = lam * x + (1.0 - lam) * tf.gather(x, perm)
    y = lam * y + (1.0 - lam) * tf.gather(y, perm)
    w = lam * w + (1.0 - lam) * tf.gather(w, perm)
    return x, y, w


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    class_weights: np.ndarray | None = None,
    mixup_alpha: float = 0.0,
    soft_labels: np.ndarray | None = None,
    soft_weight: float = 0.0,
) -> tf.data.Dataset:
    """Batches of (float32 images (B,48,48,1) in 0..255, one-hot float32 labels (B,7)[, weights]).

    `training` shuffles (reshuffled every epoch, seeded) and applies `augment` and mixup;
    evaluation keeps order and applies neither. With `class_weights` (one per class) each
    batch carries per-sample weights as a third element. With `soft_labels` (a teacher's
    probabilities, one row per image: distillation) each target is `soft_weight` of that row
    plus the rest of the one-hot label, before mixup.
    """
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMG_SIZE, IMG_SIZE):
        raise ValueError(f"images must be uint8 (N, {IMG_SIZE}, {IMG_SIZE}), got {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    distil = training and soft_labels is not None and soft_weight > 0
    if distil:
        soft = np.asarray(soft_labels, dtype=np.float32)
        if soft.shape != (len(labels), NUM_CLASSES):
            raise ValueError(f"soft_labels must be ({len(labels)}, {NUM_CLASSES}), got {soft.shape}")
        ds = tf.data.Dataset.from_tensor_slices((images, labels, soft))
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    weights_table = None if class_weights is None else tf.constant(class_weights, tf.float32)
    aug = augment if (training and augment is not None and augment.enabled) else None
    use_mixup = training and mixup_alpha > 0

    def to_float(x, y, soft=None):
        x = tf.cast(x, tf.float32)[..., None]
        if aug is not None:
            x = augment_batch(x, aug)
        onehot = tf.one_hot(y, NUM_CLASSES, dtype=tf.float32)
        if soft is not None:
            onehot = (1.0 - soft_weight) * onehot + soft_weight * soft
        w = tf.ones(tf.shape(y), tf.float32) if weights_table is None else tf.gather(weights_table, y)
        if use_mixup:
            x, onehot, w = _mixup(x, onehot, w, mixup_alpha)
        if weights_table is None:
            return x, onehot
        return x, onehot, w

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
