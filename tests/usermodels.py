"""Small user models made at test time (no downloads): a Keras file, a SavedModel with two
named inputs, and the pieces the bad-model tests need."""

from __future__ import annotations

from pathlib import Path


def keras_file(directory: Path, name: str = "tiny.keras", loss: str | None = "mse",
               outputs: int = 1) -> Path:
    """A small conv net on 6x6x2 inputs with batch norm; compiled with `loss` when given."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((6, 6, 2), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    heads = [keras.layers.Dense(3, name=f"head{i}")(x) for i in range(outputs)]
    model = keras.Model(inputs, heads[0] if outputs == 1 else heads)
    if loss:
        model.compile(optimizer="sgd", loss=loss)
    path = directory / name
    model.save(path)
    return path


def two_input_saved_model(directory: Path, name: str = "two_inputs") -> Path:
    """A SavedModel whose serving signature takes `a` (4 floats) and `b` (2 floats) by name
    and returns two outputs, `sum` and `product`."""
    import tensorflow as tf

    class Two(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float32), (4, 3)) / 10.0)
            self.v = tf.Variable([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])

        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="a"),
                                      tf.TensorSpec((None, 2), tf.float32, name="b")])
        def serve(self, a, b):
            h = tf.matmul(a, self.w) + tf.matmul(b, self.v)
            return {"sum": tf.nn.relu(h), "product": tf.reduce_prod(h, axis=1, keepdims=True)}

    module = Two()
    path = directory / name
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path
