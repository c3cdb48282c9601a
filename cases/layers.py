"""Layer helpers in raw tf ops, shared by the cases. Imported lazily: TensorFlow lives here.

Batch norm is real batch norm (scale, offset, moving mean and variance). Inference uses the
fused op with the moving statistics, which is what inference optimisers fold into the preceding
convolution. Training uses batch statistics from `tf.nn.moments` (biased variance, like Keras)
and returns the new moving averages, so every mode can apply the same update.
"""

from __future__ import annotations

import tensorflow as tf

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


def batch_norm(x, params, prefix: str, training: bool, updates: dict):
    scale, offset = params[f"{prefix}/gamma"], params[f"{prefix}/beta"]
    mean, var = params[f"{prefix}/moving_mean"], params[f"{prefix}/moving_variance"]
    if not training:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, scale, offset, mean=mean, variance=var, epsilon=BN_EPSILON, is_training=False
        )
        return y
    batch_mean, batch_var = tf.nn.moments(x, axes=[0, 1, 2])
    updates[f"{prefix}/moving_mean"] = mean * BN_MOMENTUM + batch_mean * (1 - BN_MOMENTUM)
    updates[f"{prefix}/moving_variance"] = var * BN_MOMENTUM + batch_var * (1 - BN_MOMENTUM)
    return tf.nn.batch_normalization(x, batch_mean, batch_var, offset, scale, BN_EPSILON)


def dense(x, params, prefix: str):
    return tf.nn.bias_add(tf.linalg.matmul(x, params[f"{prefix}/kernel"]), params[f"{prefix}/bias"])


def softmax_cross_entropy(logits, labels):
    """Mean sparse softmax cross-entropy: the loss every training mode minimises."""
    return tf.math.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
