"""`fernet`: our network, designed for the most FER2013 accuracy per CPU-minute.

A VGG-style stem at full 48x48 resolution (faces need fine detail around eyes and mouth),
then residual stages that halve the resolution and double the width, global average
pooling and a dropout-regularised softmax. Batch norm and identity/projection shortcuts
let it train quickly with a high learning rate, which is what a short CPU budget needs.
"""

from __future__ import annotations

import keras
from keras import layers

from fer_core.models.layers import classifier_head, conv_bn_relu, face_input
from fer_core.models.registry import register_model


def _residual_stage(x: keras.KerasTensor, filters: int, convs: int, l2: float, name: str) -> keras.KerasTensor:
    reg = keras.regularizers.L2(l2) if l2 else None
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, kernel_regularizer=reg,
                                 name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    for i in range(convs - 1):
        x = conv_bn_relu(x, filters, l2=l2, name=f"{name}_{i}")
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                      name=f"{name}_last_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_last_bn")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


@register_model("fernet", "ours: VGG stem + 3 residual stages, GAP head; ~1.2M params at width 32")
def fernet(width: int = 32, convs: int = 2, dropout: float = 0.4, l2: float = 0.0) -> keras.Model:
    inputs, x = face_input()
    for i in range(convs):
        x = conv_bn_relu(x, width, l2=l2, name=f"stem{i}")
    for stage, mult in enumerate((2, 4, 8), start=1):
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        x = _residual_stage(x, width * mult, convs, l2, name=f"stage{stage}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, classifier_head(x), name="fernet")
