"""Grad-CAM (Selvaraju et al., 2017): where in a face the model looked for a class.

Works for any registered convolutional model: the target is the last 4-D feature map in the
graph that is not merely pooled, dropped or mirrored (a conv, its batch norm / ReLU, or a
residual add), found automatically. The class score is the log-probability, because
gradients through a saturated softmax vanish and would leave a confident model with no map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Layers that only pool, regularise or copy a feature map: the map before them is sharper.
_PASS_THROUGH = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "MaxPooling2D", "AveragePooling2D", "ActivityRegularization", "Identity",
)
_CONV = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")


def _is_4d(layer: Any) -> bool:
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


def find_target_layer(model: Any) -> str:
    """Name of the last conv-like feature map of `model` (see module doc); ValueError if none."""
    if not any(type(layer).__name__ in _CONV for layer in model.layers):
        raise ValueError(f"model {model.name!r} has no convolution layer: Grad-CAM needs one")
    for layer in reversed(model.layers):
        if not _is_4d(layer) or type(layer).__name__ in _PASS_THROUGH:
            continue
        _, h, w, _ = layer.output.shape
        if (h or 0) > 1 or (w or 0) > 1:
            return layer.name
    raise ValueError(f"model {model.name!r} has no spatial feature map for Grad-CAM")


def _grad_models(model: Any, layer_name: str) -> tuple[Any, Any | None]:
    """(body: input -> feature map, head: feature map -> probabilities), cached on the model.

    The gradient is taken through the head alone, so no convolution before the feature map
    is ever differentiated: that is faster, and it avoids oneDNN's filter-gradient kernel,
    which aborts the process (`free(): invalid size`) for mini-Xception on AVX-512 CPUs with
    TF 2.21. `head` is None when a connection skips over the feature map (no clean split);
    then the body also returns the probabilities and the tape spans the whole model.
    """
    cache = getattr(model, "_fer_gradcam_models", None)
    if cache is None:
        cache = {}
        try:
            model._fer_gradcam_models = cache
        except AttributeError:  # pragma: no cover
            pass
    if layer_name not in cache:
        import keras

        fmap = model.get_layer(layer_name).output
        try:
            cache[layer_name] = (keras.Model(model.inputs, fmap),
                                 keras.Model(fmap, model.outputs[0]))
        except ValueError:
            cache[layer_name] = (keras.Model(model.inputs, [fmap, model.outputs[0]]), None)
    return cache[layer_name]


def _map_and_gradient(model: Any, layer_name: str, x: np.ndarray,
                      class_index: int | None) -> tuple[Any, Any, Any, int]:
    """Feature map, d log p(class) / d map, probabilities and the class, for a batch `x` of one
    image; the class defaults to the predicted one."""
    import tensorflow as tf

    body, head = _grad_models(model, layer_name)
    inputs = tf.constant(x)
    with tf.GradientTape(watch_accessed_variables=head is None) as tape:
        if head is None:
            fmap, probs = body(inputs, training=False)
        else:
            fmap = body(inputs, training=False)
            tape.watch(fmap)
            probs = head(fmap, training=False)
        if class_index is None:
            class_index = int(tf.argmax(probs[0]))
        score = tf.math.log(probs[:, class_index] + 1e-7)
    return fmap, tape.gradient(score, fmap), probs, class_index


def gradcam(model: Any, image: np.ndarray, class_index: int | None = None, *,
            layer_name: str | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """Grad-CAM of one face for `class_index` (default: the predicted class).

    `image` is a uint8/float face (H, W) or (H, W, 1) in 0..255. Returns `(cam, class_index,
    probs)`: `cam` is float32 (H, W) in [0, 1] (all zeros when nothing in the face speaks for
    the class), `probs` the model's 7 probabilities.
    """
    import tensorflow as tf

    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"image must be (H, W) or (H, W, 1), got shape {np.shape(image)}")
    h, w = x.shape[:2]
    layer_name = layer_name or find_target_layer(model)
    fmap, grads, probs, class_index = _map_and_gradient(model, layer_name, x[None], class_index)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one weight per channel
    cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1))[0]  # (h', w')
    cam = tf.image.resize(cam[..., None], (h, w), method="bilinear")[..., 0].numpy()
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max())
    cam = (cam / peak if peak > 0 else np.zeros_like(cam)).astype(np.float32)
    return cam, int(class_index), np.asarray(probs[0], dtype=np.float32)


def overlay(image: np.ndarray, cam: np.ndarray, *, alpha: float = 0.45,
            scale: int = 1) -> np.ndarray:
    """RGB uint8 picture of the grey face with the map drawn over it in the JET colours.

    `scale` enlarges both (nearest neighbour for the face, bilinear for the map) for display.
    """
    import cv2

    face = np.asarray(image)
    if face.ndim == 3:
        face = face[..., 0]
    face = np.clip(face, 0, 255).astype(np.uint8)
    cam = np.clip(np.asarray(cam, dtype=np.float32), 0.0, 1.0)
    if cam.shape != face.shape:
        raise ValueError(f"map shape {cam.shape} differs from image shape {face.shape}")
    if scale > 1:
        size = (face.shape[1] * scale, face.shape[0] * scale)
        face = cv2.resize(face, size, interpolation=cv2.INTER_NEAREST)
        cam = cv2.resize(cam, size, interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap((cam * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB).astype(np.float32)
    grey = np.repeat(face[..., None], 3, axis=2).astype(np.float32)
    return np.clip((1 - alpha) * grey + alpha * heat, 0, 255).astype(np.uint8)
