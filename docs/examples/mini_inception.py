"""A mini-Inception module with a residual add: the DSL example of the README.

tinycnn summary docs/examples/mini_inception.py:mini_inception
tinycnn draw docs/examples/mini_inception.py:mini_inception -o docs/mini_inception.svg
"""

import tinycnn as tc
from tinycnn import layers as L


def mini_inception(num_classes=10, input_shape=(3, 32, 32)):
    x = inp = tc.Input(input_shape, name="image")
    with tc.block("stem"):
        x = L.Conv2D(32, 3, padding="same", use_bias=False, name="conv")(x)
        x = L.BatchNormalization(name="bn")(x)
        x = L.Activation("relu", name="relu")(x)
    with tc.block("inception"):
        with tc.block("branch1x1"):
            b1 = L.Conv2D(16, 1, activation="relu", name="conv")(x)
        with tc.block("branch3x3"):
            b2 = L.Conv2D(16, 1, activation="relu", name="reduce")(x)
            b2 = L.Conv2D(24, 3, padding="same", activation="relu", name="conv")(b2)
        with tc.block("branch5x5"):
            b3 = L.Conv2D(4, 1, activation="relu", name="reduce")(x)
            b3 = L.Conv2D(8, 5, padding="same", activation="relu", name="conv")(b3)
        with tc.block("branch_pool"):
            b4 = L.MaxPool2D(3, strides=1, padding="same", name="pool")(x)
            b4 = L.Conv2D(8, 1, activation="relu", name="proj")(b4)
        y = L.Concatenate(name="concat")([b1, b2, b3, b4])  # 16 + 24 + 8 + 8 = 56 channels
        y = L.Conv2D(32, 1, name="project")(y)  # back to 32 channels to match the shortcut
        y = L.Add(name="residual")([x, y])
        y = L.Activation("relu", name="relu")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    out = L.Dense(num_classes, activation="softmax", name="classifier")(y)
    return tc.Model(inp, out, name="mini_inception")
