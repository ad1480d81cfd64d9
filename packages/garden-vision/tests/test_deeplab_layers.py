"""`SpatialPyramidPooling` (DeepLab's ASPP layer) against a NumPy reference.

The NumPy helpers here (dilated "same" convolution, depthwise convolution, TensorFlow's
half-pixel bilinear and nearest resizing) are shared with the other segmentation tests.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_fpn import batch_norm_inference, randomize_weights

from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.modeling.layers.deeplab import SpatialPyramidPooling

# --- NumPy references -------------------------------------------------------------------


def conv_same(x, kernel, rate=1):
    """TensorFlow's "same"-padded, stride-1 convolution with dilation `rate` (NHWC, HWIO)."""
    size_h, size_w = kernel.shape[:2]
    pad_h, pad_w = (size_h - 1) * rate, (size_w - 1) * rate
    padded = np.pad(
        x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    )
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for i in range(size_h):
        for j in range(size_w):
            window = padded[:, i * rate : i * rate + height, j * rate : j * rate + width]
            out += window @ kernel[i, j]
    return out


def depthwise_same(x, kernel, rate=1):
    """A "same"-padded depthwise convolution (kernel `[kh, kw, channels, 1]`)."""
    size = kernel.shape[0]
    pad = (size - 1) * rate
    padded = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros(x.shape)
    for i in range(size):
        for j in range(size):
            out += (
                padded[:, i * rate : i * rate + height, j * rate : j * rate + width]
                * (kernel[i, j, :, 0])
            )
    return out


def _bilinear_matrix(size_in, size_out):
    """Rows of interpolation weights: TensorFlow 2's bilinear resize (half-pixel centers)."""
    matrix = np.zeros((size_out, size_in))
    scale = size_in / size_out
    for out in range(size_out):
        source = (out + 0.5) * scale - 0.5
        low = int(np.floor(source))
        fraction = source - low
        matrix[out, min(max(low, 0), size_in - 1)] += 1 - fraction
        matrix[out, min(max(low + 1, 0), size_in - 1)] += fraction
    return matrix


def resize_bilinear(x, height, width):
    x = np.einsum("oh,bhwc->bowc", _bilinear_matrix(x.shape[1], height), x)
    return np.einsum("ow,bhwc->bhoc", _bilinear_matrix(x.shape[2], width), x)


def resize_nearest(x, height, width):
    """TensorFlow 2's nearest-neighbour resize (half-pixel centers)."""
    rows = np.minimum(np.floor((np.arange(height) + 0.5) * x.shape[1] / height), x.shape[1] - 1)
    cols = np.minimum(np.floor((np.arange(width) + 0.5) * x.shape[2] / width), x.shape[2] - 1)
    return x[:, rows.astype(int)][:, :, cols.astype(int)]


def average_pool(x, window):
    """Average pooling with windows `window` = strides and "valid" padding."""
    kh, kw = window
    batch, height, width, channels = x.shape
    x = x[:, : height // kh * kh, : width // kw * kw]
    return x.reshape(batch, height // kh, kh, width // kw, kw, channels).mean(axis=(2, 4))


def conv_bn_relu(x, conv, norm, epsilon, rate=1):
    """A bias-free convolution, inference batch normalization and ReLU, with Keras' weights."""
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in norm.get_weights())
    if isinstance(conv, keras.layers.SeparableConv2D):
        depthwise, pointwise = (np.asarray(w, np.float64) for w in conv.get_weights())
        out = conv_same(depthwise_same(x, depthwise, rate), pointwise)
    else:
        out = conv_same(x, np.asarray(conv.kernel, np.float64), rate)
    return np.maximum(batch_norm_inference(out, gamma, beta, mean, variance, epsilon), 0.0)


def spp_reference(layer, x, resize=resize_bilinear):
    """Model Garden's ASPP computation in NumPy, with `layer`'s weights (ReLU)."""
    eps = layer.batchnorm_epsilon
    branches = [conv_bn_relu(x, *layer.conv1x1_branch.layers[:2], eps)]
    for index, rate in enumerate(layer.dilation_rates):
        conv, norm, _ = getattr(layer, f"aspp_atrous_{index}").layers
        branches.append(conv_bn_relu(x, conv, norm, eps, rate))
    _, conv, norm, _ = layer.pooling_branch.layers
    if layer.pool_kernel_size is None:
        pooled = conv_bn_relu(x.mean(axis=(1, 2), keepdims=True), conv, norm, eps)
        pooled = np.broadcast_to(pooled, branches[0].shape)
    else:
        pooled = conv_bn_relu(average_pool(x, layer.pool_kernel_size), conv, norm, eps)
        pooled = resize(pooled, *x.shape[1:3])
    conv, norm, _, _ = layer.projection.layers
    return conv_bn_relu(np.concatenate([*branches, pooled], axis=-1), conv, norm, eps)


def features(shape=(2, 6, 6, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def built_spp(x, **kwargs):
    layer = SpatialPyramidPooling(**{"output_channels": 4, "dropout": 0.0, **kwargs})
    layer(x)
    randomize_weights(layer)
    return layer


# --- Tests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"dilation_rates": [1, 2]},
        {"dilation_rates": [2], "pool_kernel_size": [2, 3]},
        {"dilation_rates": [1, 3], "use_depthwise_convolution": True},
        {"dilation_rates": [], "spp_layer_version": "v2"},
    ],
)
def test_output_matches_numpy(settings):
    x = features()
    layer = built_spp(x, **settings)
    outputs = layer(x, training=False)
    assert tuple(outputs.shape) == (2, 6, 6, 4)
    np.testing.assert_allclose(outputs, spp_reference(layer, x), rtol=1e-4, atol=1e-4)


def test_pooled_branch_is_resized_bilinearly_in_v1_and_by_interpolation_in_v2():
    x = features((1, 4, 6, 3), seed=1)
    v1 = built_spp(x, dilation_rates=[1], pool_kernel_size=[2, 2], interpolation="nearest")
    v2 = SpatialPyramidPooling(**{**v1.get_config(), "spp_layer_version": "v2"})
    v2(x)
    v2.set_weights(v1.get_weights())
    np.testing.assert_allclose(v1(x), spp_reference(v1, x), rtol=1e-4, atol=1e-4)
    expected = spp_reference(v2, x, resize=resize_nearest)
    np.testing.assert_allclose(v2(x), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(v1(x), v2(x))


def test_parameter_counts_by_hand_and_depthwise_regularization_per_version():
    channels, filters, rates = 8, 4, [1, 2, 3]
    x = features((1, 5, 5, channels))
    plain = built_spp(x, dilation_rates=rates)
    # 1x1 and pooling branches, three 3x3 branches, the 1x1 projection of 5 * 4 channels;
    # a batch normalization after each of those six (gamma, beta trainable; mean, variance
    # not).
    convs = 2 * channels * filters + 3 * 9 * channels * filters + 5 * filters * filters
    assert model_checks.count_params(plain) == convs + 6 * 4 * filters
    assert sum(int(np.prod(w.shape)) for w in plain.trainable_weights) == convs + 6 * 2 * filters

    regularizer = keras.regularizers.L2(1e-3)
    separable = {}
    for version in ("v1", "v2"):
        layer = built_spp(
            x,
            dilation_rates=rates,
            use_depthwise_convolution=True,
            kernel_regularizer=regularizer,
            spp_layer_version=version,
        )
        separable[version] = layer
        depthwise = 3 * (9 * channels + channels * filters)
        expected = 2 * channels * filters + depthwise + 5 * filters * filters + 6 * 4 * filters
        assert model_checks.count_params(layer) == expected
    # Model Garden's v1 leaves the depthwise kernels unregularized; v2 regularizes them.
    kernels = 1 + 3 + 1 + 1
    assert len(separable["v1"].losses) == kernels
    assert len(separable["v2"].losses) == kernels + 3


def test_unknown_height_and_width_in_a_tf_function():
    layer = SpatialPyramidPooling(output_channels=4, dilation_rates=[2], pool_kernel_size=[2, 2])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def run(images):
        return layer(images, training=False)

    for shape in ((1, 4, 6, 3), (2, 8, 4, 3)):
        x = features(shape)
        assert tuple(run(x).shape) == (*shape[:3], 4)
        np.testing.assert_allclose(run(x), layer(x), rtol=1e-5, atol=1e-5)


def test_shared_checks_config_checkpoint_keras_file_train_step_and_mixed_precision(tmp_path):
    x = features((2, 8, 8, 5))

    def make():
        return SpatialPyramidPooling(
            output_channels=6,
            dilation_rates=[1, 2],
            pool_kernel_size=[4, 4],
            use_depthwise_convolution=True,
            kernel_regularizer=keras.regularizers.L2(1e-4),
            activation="swish",
            spp_layer_version="v2",
            interpolation="bicubic",
        )

    layer = model_checks.run_model_test(
        make, x, (2, 8, 8, 6), tmp_path, mixed_precision_policy="mixed_bfloat16"
    )
    config = layer.get_config()
    assert config["dilation_rates"] == [1, 2]
    assert config["pool_kernel_size"] == [4, 4]
    assert config["spp_layer_version"] == "v2"
    assert config["interpolation"] == "bicubic"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"spp_layer_version": "v3"}, "spp_layer_version"),
        ({"interpolation": "cubic"}, "interpolation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dilation_rates": [0]}, "dilation_rates"),
        ({"pool_kernel_size": [3]}, "pool_kernel_size"),
        ({"output_channels": 0}, "output_channels"),
        ({"activation": "nope"}, "activation"),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    arguments = {"output_channels": 4, "dilation_rates": [1], **settings}
    with pytest.raises((ConfigError, ValueError), match=message):
        SpatialPyramidPooling(**arguments)
