"""The two well-known 2018 Keras networks, rebuilt as their write-ups describe them.

`paul2018`: the freeCodeCamp post's VGG-like network (reported 63.2% on PrivateTest).
`kinli2018`: the Medium post's four-block network.
They are here as baselines to beat, with their published layer sizes as defaults.
"""

from __future__ import annotations

import keras
from keras import layers

from fer_core.models.layers import classifier_head, face_input
from fer_core.models.registry import register_model


@register_model("paul2018", "2018 freeCodeCamp VGG-like CNN, 9M params (63.2% PrivateTest reported)")
def paul2018(width: int = 64, dropout: float = 0.5, l2: float = 0.01) -> keras.Model:
    inputs, x = face_input()
    x = layers.Conv2D(width, 3, padding="valid", activation="relu",
                      kernel_regularizer=keras.regularizers.L2(l2) if l2 else None)(x)
    x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(2, 2)(x)
    x = layers.Dropout(dropout)(x)
    for mult in (2, 4, 8):
        for _ in range(3):
            x = layers.Conv2D(width * mult, 3, padding="same", activation="relu")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2, 2)(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    for units in (512, 256, 128, 64):
        x = layers.Dense(units * width // 64, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x), name="paul2018")


@register_model("kinli2018", "2018 Medium four-block CNN: 2x3x3 convs of 64/128/256/512 filters")
def kinli2018(width: int = 64, dropout: float = 0.5, l2: float = 0.01) -> keras.Model:
    inputs, x = face_input()
    for block, mult in enumerate((1, 2, 4, 8)):
        first_reg = keras.regularizers.L2(l2) if (block == 0 and l2) else None
        x = layers.Conv2D(width * mult, 3, padding="same", activation="relu",
                          kernel_regularizer=first_reg)(x)
        if block > 0:
            x = layers.BatchNormalization()(x)
        x = layers.Conv2D(width * mult, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2, 2)(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    for units, rate in ((512, 0.4), (256, 0.4), (128, dropout)):
        x = layers.Dense(units * width // 64, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Dropout(rate)(x)
    return keras.Model(inputs, classifier_head(x), name="kinli2018")
