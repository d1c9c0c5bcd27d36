"""What one face costs a model, bounded before it runs: an uploaded `.keras` is untrusted.

A 26 KB file (UpSampling2D(100) then a convolution) loads fine and then needs gigabytes for
one face. `model_cost` adds up, from the layers' output shapes alone (nothing is run), the
multiply-adds of every layer with a kernel and the largest activation; `check_model_cost`
refuses a model above the limits, and `trial_forward` then runs one face with a time limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from fer_core import uploads
from fer_core.labels import IMG_SIZE, NUM_CLASSES


@dataclass(frozen=True)
class ModelCost:
    """Per face: floating-point operations, and the largest layer output (bytes, which layer)."""

    flops: int
    activation_bytes: int
    largest_layer: str


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer, nested models' layers included (their own outputs counted too)."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_layers(layer))
    return found


def _output_shapes(layer: keras.layers.Layer) -> list[tuple]:
    """The output shape of each call of `layer` in its graph (a shared layer has several)."""
    shapes = []
    for node in getattr(layer, "_inbound_nodes", []):
        shapes.extend(tuple(t.shape) for t in keras.tree.flatten(node.outputs))
    return shapes


def _kernel_size(layer: keras.layers.Layer) -> int:
    """Weights used once per output position: every weight of rank >= 2 (conv kernels,
    depthwise and pointwise kernels, dense kernels); biases and norms are per element."""
    return sum(math.prod(w.shape) for w in layer.weights if len(w.shape) >= 2)


def model_cost(model: keras.Model) -> ModelCost:
    """FLOPs and the largest activation per face, from output shapes (no forward pass).

    A layer with a kernel costs 2 x kernel size x output positions (exact for convolutions,
    separable and depthwise ones included, and dense layers; an upper bound for transposed
    ones); every layer also costs one operation per output element. ValueError when a
    layer's output size is not fixed (the cost could not be bounded).
    """
    flops, largest, largest_layer = 0, 0, ""
    for layer in _layers(model):
        kernel = _kernel_size(layer)
        for shape in _output_shapes(layer):
            per_face = shape[1:]
            if any(d is None for d in per_face):
                raise ValueError(f"layer {layer.name!r} has an output shape {shape} that is not "
                                 f"fixed; the model must take ({IMG_SIZE}, {IMG_SIZE}, 1) faces")
            elements = math.prod(per_face)
            positions = math.prod(per_face[:-1]) if len(per_face) > 1 else 1
            flops += 2 * kernel * positions + elements
            itemsize = np.dtype(getattr(layer, "compute_dtype", None) or "float32").itemsize
            if elements * itemsize > largest:
                largest, largest_layer = elements * itemsize, layer.name
    return ModelCost(int(flops), int(largest), largest_layer)


def check_model_cost(model: keras.Model, *, max_flops: int = uploads.MAX_FLOPS_PER_FACE,
                     max_activation_bytes: int = uploads.MAX_ACTIVATION_BYTES) -> ModelCost:
    """`model_cost`, or ValueError saying which limit the model exceeds and by how much."""
    cost = model_cost(model)
    if cost.flops > max_flops:
        raise ValueError(f"one face needs {cost.flops / 1e9:,.1f} GFLOPs, more than the "
                         f"{max_flops / 1e9:g} GFLOPs allowed for a model")
    if cost.activation_bytes > max_activation_bytes:
        raise ValueError(f"layer {cost.largest_layer!r} produces "
                         f"{cost.activation_bytes / 2**20:,.0f} MB per face, more than the "
                         f"{max_activation_bytes / 2**20:g} MB allowed for one layer's output")
    return cost


def trial_forward(model: keras.Model, *, seconds: float = uploads.TRIAL_SECONDS) -> None:
    """Run one blank face through `model` within `seconds`; ValueError for any failure
    (out of memory, a shape error, a wrong output) or when it takes longer. The check runs
    in a thread, so a slow model is refused on time (its computation finishes unseen)."""
    face = np.zeros((1, IMG_SIZE, IMG_SIZE, 1), np.float32)
    try:
        out = uploads.run_within(
            lambda: keras.ops.convert_to_numpy(model(face, training=False)), seconds)
    except uploads.TooSlow:
        raise ValueError(f"one face took more than {seconds:g} s; the model is too slow") \
            from None
    except Exception as exc:  # noqa: BLE001 - any failure of an untrusted model
        raise ValueError(f"the model fails on a face ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    shape = tuple(np.shape(out))
    if shape != (1, NUM_CLASSES):
        raise ValueError(f"the model outputs shape {shape} for one face; expected "
                         f"(1, {NUM_CLASSES}): one probability per emotion")


__all__ = ["ModelCost", "check_model_cost", "model_cost", "trial_forward"]
