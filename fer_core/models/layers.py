"""Building blocks shared by the model builders."""

from __future__ import annotations

import keras
from keras import layers

from fer_core.labels import IMG_SIZE, NUM_CLASSES


def face_input(name: str = "face") -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The (48, 48, 1) input of grey levels 0..255 and its [0, 1] rescaled tensor."""
    inputs = keras.Input(shape=(IMG_SIZE, IMG_SIZE, 1), name=name)
    return inputs, layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def classifier_head(x: keras.KerasTensor) -> keras.KerasTensor:
    """The 7-way softmax; float32 so mixed-precision bodies still give exact probabilities."""
    return layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="emotion")(x)


def conv_bn_relu(
    x: keras.KerasTensor,
    filters: int,
    *,
    kernel_size: int = 3,
    strides: int = 1,
    l2: float = 0.0,
    name: str,
) -> keras.KerasTensor:
    reg = keras.regularizers.L2(l2) if l2 else None
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_regularizer=reg, name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)
