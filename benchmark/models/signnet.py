"""SignNet: the blog's traffic-sign CNN.

80x80x3 input, 4 x [Conv2D 3x3 -> MaxPool 2x2 -> ReLU], Flatten, Dense + ReLU,
Dense(num_classes) + softmax.

ReLU commutes with max-pooling (both are monotone), so ``relu_before_pool=True``
builds the same function with the ReLU fused into the convolution. The export
graph uses that order: the Edge TPU documentation lists MaxPool2d as supported
only *without* a fused activation, and the TFLite converter would otherwise
fuse the trailing ReLU into MAX_POOL_2D. Weights are identical in both orders.
"""

from __future__ import annotations

import dataclasses

from benchmark.models.base import ModelEntry

FILTERS = (16, 32, 64, 64)
DENSE_UNITS = 128


def build_signnet(*, num_classes: int = 30, input_size: int = 80, batch_size: int | None = None,
                  filters=FILTERS, dense_units: int = DENSE_UNITS,
                  relu_before_pool: bool = False):
    """Build SignNet as a Keras functional model.

    Parameters
    ----------
    num_classes : int
    input_size : int
        Side of the square RGB input (inputs are floats in [0, 1]).
    batch_size : int or None
        Fixed batch dimension; the export model uses 1 so the converted graph
        has static shapes.
    filters : sequence of 4 int
    dense_units : int
    relu_before_pool : bool
        Apply ReLU in the conv instead of after the pool (same function).
    """
    import keras
    from keras import layers

    inp = keras.Input((input_size, input_size, 3), batch_size=batch_size, name="image")
    x = inp
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, padding="same", name=f"conv{i + 1}",
                          activation="relu" if relu_before_pool else None)(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        if not relu_before_pool:
            x = layers.ReLU(name=f"relu{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense1")(x)
    out = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="signnet")


ENTRY = ModelEntry(
    name="signnet",
    builder=build_signnet,
    default_dataset="carolo-synth",
    input_size=80,
    num_classes=30,
    description="Blog traffic-sign CNN: 4x[conv3x3-maxpool-relu], dense 128, softmax",
    train_defaults={"epochs": 20, "batch_size": 64, "learning_rate": 1e-3, "augment": True},
    export_kwargs={"relu_before_pool": True},
)


#: The same network with 43 outputs, trained on GTSRB (its own artifacts directory).
ENTRY_GTSRB = dataclasses.replace(
    ENTRY, name="signnet-gtsrb", default_dataset="gtsrb", num_classes=43,
    description="SignNet with 43 outputs for GTSRB")
