"""MobileNet v1 (Howard et al. 2017, arXiv:1704.04861), written with raw tf ops.

Read top to bottom like the paper's Table 1: a standard 3x3 stride-2 convolution, then 13
depthwise-separable blocks (3x3 depthwise conv, batch norm, ReLU6, 1x1 pointwise conv, batch
norm, ReLU6), global average pooling and a fully connected classifier. Convolutions have no
bias: the batch norm that follows supplies the offset (which is why inference optimisers can
fold it into the convolution).

The paper's knobs:
- `alpha`, the width multiplier: every layer's channel count is `int(channels * alpha)`
  (Keras applications' rounding). Cost shrinks roughly by alpha squared.
- `resolution`, the resolution multiplier expressed as the input size (224, 192, 160, 128 in
  the paper). The network's total stride is 32, so the resolution must be at least 32.
- `depth_multiplier`, channels per input channel of each depthwise convolution.
- `classes`, the classifier's width (1000 for ImageNet).
Padding is SAME throughout, as in the TF-Slim reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

from cases.base import (
    ConfigError,
    ParamSpec,
    Workload,
    conv_output_size,
    keras_layer_name,
    no_tap,
    set_keras_weights,
)
from cases.spec import config_string

# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks, paper Table 1.
BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
STEM_FILTERS = 32
MIN_RESOLUTION = 32
# Ceilings: far above any sensible benchmark, low enough that a typo (alpha=1e308) is an error
# naming the limit instead of an overflow or an out-of-memory deep inside TensorFlow.
MAX_ALPHA = 4.0
MAX_RESOLUTION = 1024
MAX_DEPTH_MULTIPLIER = 16
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class MobileNetConfig:
    alpha: float = 1.0
    resolution: int = 224
    depth_multiplier: int = 1
    classes: int = 1000


def validate(c: MobileNetConfig) -> None:
    if not 0 < c.alpha <= MAX_ALPHA:  # also false for nan
        raise ConfigError(f"mobilenet: alpha must be > 0 and <= {MAX_ALPHA:g} (the paper uses "
                          f"0.25, 0.5, 0.75, 1.0), got {c.alpha}")
    if int(STEM_FILTERS * c.alpha) < 1:
        raise ConfigError(f"mobilenet: alpha={c.alpha} leaves the first layer with no channels; "
                          f"use alpha >= {1 / STEM_FILTERS:.4f}")
    if c.resolution < MIN_RESOLUTION:
        raise ConfigError(
            f"mobilenet: resolution {c.resolution} is too small for the network's five stride-2 "
            f"layers (total stride 32); use resolution >= {MIN_RESOLUTION} (paper: 128-224)"
        )
    if c.resolution > MAX_RESOLUTION:
        raise ConfigError(f"mobilenet: resolution must be <= {MAX_RESOLUTION} "
                          f"(paper: 128-224), got {c.resolution}")
    if not 1 <= c.depth_multiplier <= MAX_DEPTH_MULTIPLIER:
        raise ConfigError(f"mobilenet: depth_multiplier must be between 1 and "
                          f"{MAX_DEPTH_MULTIPLIER}, got {c.depth_multiplier}")
    if not 1 <= c.classes <= MAX_CLASSES:
        raise ConfigError(f"mobilenet: classes must be between 1 and {MAX_CLASSES}, "
                          f"got {c.classes}")


def _bn_specs(prefix: str, channels: int) -> dict[str, ParamSpec]:
    return {
        f"{prefix}/gamma": ParamSpec((channels,), init="bn_scale"),
        f"{prefix}/beta": ParamSpec((channels,), init="bn_mean"),
        f"{prefix}/moving_mean": ParamSpec((channels,), trainable=False, init="bn_mean"),
        f"{prefix}/moving_variance": ParamSpec((channels,), trainable=False, init="bn_var"),
    }


def workload(c: MobileNetConfig) -> Workload:
    validate(c)
    specs: dict[str, ParamSpec] = {}
    stem = int(STEM_FILTERS * c.alpha)
    size = conv_output_size(c.resolution, 3, 2, "SAME")
    specs["conv1/kernel"] = ParamSpec((3, 3, 3, stem))
    specs.update(_bn_specs("conv1/bn", stem))
    macs = size * size * 9 * 3 * stem
    layer_names = ["conv1"]
    channels = stem
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        out = int(filters * c.alpha)
        mid = channels * c.depth_multiplier
        size = conv_output_size(size, 3, stride, "SAME")
        specs[f"block{i}/depthwise/kernel"] = ParamSpec((3, 3, channels, c.depth_multiplier),
                                                        init="he_depthwise")
        specs.update(_bn_specs(f"block{i}/depthwise/bn", mid))
        specs[f"block{i}/pointwise/kernel"] = ParamSpec((1, 1, mid, out))
        specs.update(_bn_specs(f"block{i}/pointwise/bn", out))
        macs += size * size * 9 * mid + size * size * mid * out
        layer_names += [f"block{i}/depthwise", f"block{i}/pointwise"]
        channels = out
    specs["logits/kernel"] = ParamSpec((channels, c.classes))
    specs["logits/bias"] = ParamSpec((c.classes,), init="zeros")
    macs += channels * c.classes
    layer_names += ["pool", "logits"]

    def forward(params, images, training: bool = False, tap=no_tap):
        return _forward(c, params, images, training, tap)

    return Workload(
        case="mobilenet", config=c, config_string=config_string(c),
        input_shape=(c.resolution, c.resolution, 3), classes=c.classes,
        param_specs=specs, layer_names=tuple(layer_names), macs_per_image=macs,
        forward=forward, keras_model=lambda weights: _keras_model(c, weights),
    )


def _forward(c: MobileNetConfig, params, images, training, tap):
    import tensorflow as tf

    from cases.layers import batch_norm, dense

    updates: dict = {}

    def conv_bn_relu6(x, name, conv):
        x = batch_norm(conv(x), params, f"{name}/bn", training, updates)
        return tap(name, tf.nn.relu6(x))

    x = conv_bn_relu6(images, "conv1", lambda x: tf.nn.conv2d(
        x, params["conv1/kernel"], strides=2, padding="SAME"))
    for i, (_, stride) in enumerate(BLOCKS, start=1):
        x = conv_bn_relu6(x, f"block{i}/depthwise", lambda x, i=i, s=stride: tf.nn.depthwise_conv2d(
            x, params[f"block{i}/depthwise/kernel"], strides=[1, s, s, 1], padding="SAME"))
        x = conv_bn_relu6(x, f"block{i}/pointwise", lambda x, i=i: tf.nn.conv2d(
            x, params[f"block{i}/pointwise/kernel"], strides=1, padding="SAME"))
    x = tap("pool", tf.math.reduce_mean(x, axis=[1, 2]))
    return tap("logits", dense(x, params, "logits")), updates


def _keras_model(c: MobileNetConfig, weights):
    """The same network from standard Keras layers: the independent check of the raw ops."""
    import keras
    from keras import layers

    from cases.layers import BN_EPSILON, BN_MOMENTUM

    def bn(name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                         name=keras_layer_name(name))

    inputs = keras.Input((c.resolution, c.resolution, 3))
    stem = int(STEM_FILTERS * c.alpha)
    x = layers.Conv2D(stem, 3, 2, "same", use_bias=False, name="conv1")(inputs)
    x = layers.ReLU(6.0)(bn("conv1/bn")(x))
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        x = layers.DepthwiseConv2D(3, stride, "same", depth_multiplier=c.depth_multiplier,
                                   use_bias=False, name=keras_layer_name(f"block{i}/depthwise"))(x)
        x = layers.ReLU(6.0)(bn(f"block{i}/depthwise/bn")(x))
        x = layers.Conv2D(int(filters * c.alpha), 1, 1, "same", use_bias=False,
                          name=keras_layer_name(f"block{i}/pointwise"))(x)
        x = layers.ReLU(6.0)(bn(f"block{i}/pointwise/bn")(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(c.classes, name="logits")(x)
    model = keras.Model(inputs, outputs, name="mobilenet_v1")
    set_keras_weights(model, weights)
    return model
