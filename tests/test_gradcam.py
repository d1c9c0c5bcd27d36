"""Grad-CAM for every registered model: a non-negative, non-constant map of the input size."""

from __future__ import annotations

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import gradcam
from fer_core.labels import IMG_SIZE
from fer_core.models import create_model, list_models, model_names


def _small_options(name: str) -> dict:
    """Narrow widths where the builder takes one, so each model builds in a blink."""
    defaults = next(info.defaults for info in list_models() if info.name == name)
    return {"width": 4} if "width" in defaults else {}


def _face(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:IMG_SIZE, :IMG_SIZE]
    blob = 200 * np.exp(-((yy - 30) ** 2 + (xx - 18) ** 2) / 60.0)
    return np.clip(blob + rng.integers(0, 40, (IMG_SIZE, IMG_SIZE)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", model_names())
def test_gradcam_map_for_each_registered_model(name):
    import keras

    keras.utils.set_random_seed(0)
    model = create_model(name, **_small_options(name))
    layer = gradcam.find_target_layer(model)
    assert len(model.get_layer(layer).output.shape) == 4
    face = _face()
    cam, cls, probs = gradcam.gradcam(model, face)
    assert cam.shape == (IMG_SIZE, IMG_SIZE)
    assert cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert cam.max() > cam.min(), f"{name}: constant map from layer {layer}"
    assert cls == int(np.argmax(probs))
    other = (cls + 1) % 7
    cam_other, cls_other, _ = gradcam.gradcam(model, face[..., None], other)
    assert cls_other == other and cam_other.shape == (IMG_SIZE, IMG_SIZE)
    assert cam_other.min() >= 0.0


def test_a_connection_skipping_the_feature_map_still_gives_a_map():
    import keras
    from keras import layers

    inputs = keras.Input((IMG_SIZE, IMG_SIZE, 1))
    early = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    late = layers.Conv2D(4, 3, padding="same", activation="relu", name="late")(early)
    pooled = layers.Concatenate()([layers.GlobalAveragePooling2D()(early),
                                   layers.GlobalAveragePooling2D()(late)])
    model = keras.Model(inputs, layers.Dense(7, activation="softmax")(pooled))
    assert gradcam.find_target_layer(model) == "late"
    cam, cls, probs = gradcam.gradcam(model, _face())
    assert cam.shape == (IMG_SIZE, IMG_SIZE) and cls == int(np.argmax(probs))
    assert cam.max() > cam.min()


def test_target_layer_skips_pooling_and_dropout():
    import keras
    from keras import layers

    inputs = keras.Input((IMG_SIZE, IMG_SIZE, 1))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Flatten()(x)
    model = keras.Model(inputs, layers.Dense(7, activation="softmax")(x))
    assert gradcam.find_target_layer(model) == "last_conv"


def test_model_without_convolution_is_refused():
    import keras
    from keras import layers

    inputs = keras.Input((IMG_SIZE, IMG_SIZE, 1))
    model = keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="no convolution"):
        gradcam.gradcam(model, _face())


def test_overlay_is_rgb_of_scaled_size():
    face = _face()
    cam = np.linspace(0, 1, IMG_SIZE * IMG_SIZE, dtype=np.float32).reshape(IMG_SIZE, IMG_SIZE)
    out = gradcam.overlay(face, cam, scale=3)
    assert out.shape == (IMG_SIZE * 3, IMG_SIZE * 3, 3) and out.dtype == np.uint8
    # the hot corner is redder than the cold one
    assert out[-1, -1, 0] > out[0, 0, 0]
    with pytest.raises(ValueError, match="differs"):
        gradcam.overlay(face, cam[:10])
