"""A plain configurable CNN: [conv -> ReLU -> pool] x N, flatten, [dense -> ReLU] x M, logits.

The classic image classifier from the seed notes. Defaults are MNIST-like (28x28x1, 10 classes);
`input_size=32,channels=3` makes it CIFAR-like. Every knob of the layers is a config key:
number of kernels per conv layer (`conv_filters=32/64`), `kernel_size`, `conv_stride`,
`padding` (SAME or VALID), pooling (`pool=max|avg|none`, `pool_size`, `pool_stride`; pooling
uses VALID padding), the fully connected head (`fc_units=128`, empty for none) and `classes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cases.base import (
    ConfigError,
    ParamSpec,
    Workload,
    conv_output_size,
    no_tap,
    set_keras_weights,
)
from cases.spec import config_string

POOLS = ("max", "avg", "none")
PADDINGS = ("SAME", "VALID")
# Ceilings: far above any sensible benchmark, low enough that a typo is an error naming the
# limit instead of an overflow or an out-of-memory deep inside TensorFlow.
MAX_SIZE = 1024  # input_size, kernel, strides, pool sizes
MAX_VALUES = {"channels": 64, "classes": 100_000}
MAX_UNITS = 16_384  # filters per conv layer, units per dense layer
MAX_LAYERS = 32


@dataclass(frozen=True)
class CnnConfig:
    input_size: int = 28
    channels: int = 1
    conv_filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    conv_stride: int = 1
    padding: str = "SAME"
    pool: str = "max"
    pool_size: int = 2
    pool_stride: int = 2
    fc_units: tuple[int, ...] = (128,)
    classes: int = 10


def feature_sizes(c: CnnConfig) -> list[tuple[str, int]]:
    """Spatial size after each conv and pool layer; raises ConfigError if one collapses to 0."""
    sizes, size = [], c.input_size
    for i in range(len(c.conv_filters)):
        size = conv_output_size(size, c.kernel_size, c.conv_stride, c.padding)
        sizes.append((f"conv{i + 1}", size))
        if size < 1:
            raise ConfigError(
                f"cnn: conv{i + 1} with kernel_size={c.kernel_size}, stride={c.conv_stride}, "
                f"padding={c.padding} shrinks the feature map to nothing "
                f"(input_size={c.input_size}); use a larger input_size, SAME padding or "
                "fewer layers"
            )
        if c.pool != "none":
            size = conv_output_size(size, c.pool_size, c.pool_stride, "VALID")
            sizes.append((f"pool{i + 1}", size))
            if size < 1:
                raise ConfigError(
                    f"cnn: pool{i + 1} (size {c.pool_size}, stride {c.pool_stride}) shrinks the "
                    f"feature map to nothing (input_size={c.input_size}); use a larger "
                    "input_size, pool=none or fewer conv layers"
                )
    return sizes


def validate(c: CnnConfig) -> None:
    positive = {
        "input_size": c.input_size, "channels": c.channels, "kernel_size": c.kernel_size,
        "conv_stride": c.conv_stride, "pool_size": c.pool_size, "pool_stride": c.pool_stride,
        "classes": c.classes,
    }
    for key, value in positive.items():
        ceiling = MAX_VALUES.get(key, MAX_SIZE)
        if not 1 <= value <= ceiling:
            raise ConfigError(f"cnn: {key} must be an integer between 1 and {ceiling}, "
                              f"got {value}")
    if not c.conv_filters or not all(1 <= f <= MAX_UNITS for f in c.conv_filters) \
            or len(c.conv_filters) > MAX_LAYERS:
        raise ConfigError(f"cnn: conv_filters must be 1 to {MAX_LAYERS} integers between 1 and "
                          f"{MAX_UNITS}, e.g. 32/64")
    if not all(1 <= u <= MAX_UNITS for u in c.fc_units) or len(c.fc_units) > MAX_LAYERS:
        raise ConfigError(f"cnn: fc_units must be up to {MAX_LAYERS} integers between 1 and "
                          f"{MAX_UNITS}, e.g. 128 or 256/128")
    if c.padding not in PADDINGS:
        raise ConfigError(f"cnn: padding {c.padding!r} is not one of {', '.join(PADDINGS)}")
    if c.pool not in POOLS:
        raise ConfigError(f"cnn: pool {c.pool!r} is not one of {', '.join(POOLS)}")
    feature_sizes(c)


def workload(c: CnnConfig) -> Workload:
    validate(c)
    specs: dict[str, ParamSpec] = {}
    macs, channels, size = 0, c.channels, c.input_size
    layer_names = []
    for i, filters in enumerate(c.conv_filters):
        name = f"conv{i + 1}"
        specs[f"{name}/kernel"] = ParamSpec((c.kernel_size, c.kernel_size, channels, filters))
        specs[f"{name}/bias"] = ParamSpec((filters,), init="zeros")
        size = conv_output_size(size, c.kernel_size, c.conv_stride, c.padding)
        macs += size * size * c.kernel_size * c.kernel_size * channels * filters
        channels = filters
        layer_names.append(name)
        if c.pool != "none":
            size = conv_output_size(size, c.pool_size, c.pool_stride, "VALID")
            layer_names.append(f"pool{i + 1}")
    units = size * size * channels
    for j, width in enumerate((*c.fc_units, c.classes)):
        name = f"fc{j + 1}" if j < len(c.fc_units) else "logits"
        specs[f"{name}/kernel"] = ParamSpec((units, width))
        specs[f"{name}/bias"] = ParamSpec((width,), init="zeros")
        macs += units * width
        units = width
        layer_names.append(name)

    def forward(params, images, training: bool = False, tap=no_tap):
        return _forward(c, params, images, tap), {}

    return Workload(
        case="cnn", config=c, config_string=config_string(c),
        input_shape=(c.input_size, c.input_size, c.channels), classes=c.classes,
        param_specs=specs, layer_names=tuple(layer_names), macs_per_image=macs,
        forward=forward, keras_model=lambda weights: _keras_model(c, weights),
    )


def _forward(c: CnnConfig, params, images, tap):
    import tensorflow as tf

    from cases.layers import dense

    x = images
    for i in range(len(c.conv_filters)):
        name = f"conv{i + 1}"
        x = tf.nn.conv2d(x, params[f"{name}/kernel"], strides=c.conv_stride, padding=c.padding)
        x = tap(name, tf.nn.relu(tf.nn.bias_add(x, params[f"{name}/bias"])))
        if c.pool == "max":
            x = tap(f"pool{i + 1}", tf.nn.max_pool2d(x, c.pool_size, c.pool_stride, "VALID"))
        elif c.pool == "avg":
            x = tap(f"pool{i + 1}", tf.nn.avg_pool2d(x, c.pool_size, c.pool_stride, "VALID"))
    x = tf.reshape(x, [tf.shape(x)[0], -1])
    for j in range(len(c.fc_units)):
        x = tap(f"fc{j + 1}", tf.nn.relu(dense(x, params, f"fc{j + 1}")))
    return tap("logits", dense(x, params, "logits"))


def _keras_model(c: CnnConfig, weights):
    """The same network from standard Keras layers: the independent check of the raw ops."""
    import keras

    layers = [keras.Input((c.input_size, c.input_size, c.channels))]
    for i, filters in enumerate(c.conv_filters):
        layers.append(keras.layers.Conv2D(filters, c.kernel_size, c.conv_stride, c.padding.lower(),
                                          activation="relu", name=f"conv{i + 1}"))
        if c.pool != "none":
            pool = keras.layers.MaxPooling2D if c.pool == "max" else keras.layers.AveragePooling2D
            layers.append(pool(c.pool_size, c.pool_stride, "valid", name=f"pool{i + 1}"))
    layers.append(keras.layers.Flatten())
    for j, width in enumerate(c.fc_units):
        layers.append(keras.layers.Dense(width, activation="relu", name=f"fc{j + 1}"))
    layers.append(keras.layers.Dense(c.classes, name="logits"))
    model = keras.Sequential(layers, name="cnn")
    set_keras_weights(model, weights)
    return model
