"""mini-Xception (Arriaga et al., 2017): the small network behind the `fer` package, ~51k
params at the builder's defaults (`count_params`)."""

from __future__ import annotations

import keras
from keras import layers

from fer_core.models.layers import classifier_head, face_input
from fer_core.models.registry import register_model


@register_model("mini_xception", "mini-Xception (Arriaga 2017): 4 separable residual modules, ~51k params")
def mini_xception(width: int = 8, l2: float = 0.01) -> keras.Model:
    reg = keras.regularizers.L2(l2) if l2 else None
    inputs, x = face_input()
    for i in range(2):
        x = layers.Conv2D(width, 3, use_bias=False, kernel_regularizer=reg, name=f"base{i}_conv")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    for i, mult in enumerate((2, 4, 8, 16)):
        filters = width * mult
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        residual = layers.BatchNormalization()(residual)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg,
                                   name=f"module{i}_sep2")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, residual])
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, classifier_head(x), name="mini_xception")
