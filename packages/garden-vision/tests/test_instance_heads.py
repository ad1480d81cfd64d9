"""`DetectionHead` and `MaskHead`: shapes, NumPy forwards, sizes by hand, saving, builders."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from head_checks import conv3x3, n_params

from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.heads.instance_heads import (
    DetectionHead,
    MaskHead,
    build_detection_head,
    build_mask_head,
)

EPSILON = 1e-3


def roi_features(batch=2, rois=3, side=4, channels=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, rois, side, side, channels)).astype("float32")


def roi_classes(num_classes, batch=2, rois=3, seed=1):
    return np.random.default_rng(seed).integers(0, num_classes, size=(batch, rois)).astype("int32")


def deconv(x, kernel, bias, stride):
    """Transposed convolution with kernel size == stride, 'valid': x [N, H, W, C], kernel
    [s, s, F, C] (Keras' layout); each input pixel paints an s x s block of the output."""
    n, height, width, _ = x.shape
    out = np.zeros((n, height * stride, width * stride, kernel.shape[2]))
    for dy in range(stride):
        for dx in range(stride):
            out[:, dy::stride, dx::stride, :] = x @ kernel[dy, dx].T
    return out + bias


def set_norm(layer, rng, channels):
    """Random batch-norm weights (gamma, beta, mean, variance) set on `layer`, returned."""
    values = [
        rng.normal(size=channels),
        rng.normal(size=channels),
        rng.normal(size=channels),
        rng.random(channels) + 0.5,
    ]
    layer.set_weights(values)
    return values


def norm_relu(x, values):
    gamma, beta, mean, variance = values
    return np.maximum((x - mean) / np.sqrt(variance + EPSILON) * gamma + beta, 0.0)


def check_saved_model(head, inputs, signature, tmp_path):
    """Serves `head` from a SavedModel with a free batch and ROI count; compares outputs."""
    module = tf.Module()
    module.head = head
    module.serve = tf.function(lambda *x: head(list(x) if len(x) > 1 else x[0], training=False))
    concrete = module.serve.get_concrete_function(*signature)
    path = os.path.join(str(tmp_path), "saved")
    tf.saved_model.save(module, path, signatures=concrete)
    loaded = tf.saved_model.load(path)
    served = loaded.serve(*[tf.constant(x) for x in inputs])
    expected = head(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
    for got, want in zip(tf.nest.flatten(served), tf.nest.flatten(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


# === DetectionHead ===


def test_detection_outputs_per_roi_class_specific_and_agnostic():
    classes, boxes = DetectionHead(num_classes=5, fc_dims=16)(roi_features())
    assert (tuple(classes.shape), tuple(boxes.shape)) == ((2, 3, 5), (2, 3, 20))
    assert classes.dtype == boxes.dtype == "float32"
    _, boxes = DetectionHead(num_classes=5, fc_dims=16, class_agnostic_bbox_pred=True)(
        roi_features()
    )
    assert tuple(boxes.shape) == (2, 3, 4)


def test_detection_forward_matches_numpy():
    head = DetectionHead(num_classes=3, num_convs=1, num_filters=4, num_fcs=1, fc_dims=6)
    inputs = roi_features(side=3, channels=2)
    head(inputs)
    rng = np.random.default_rng(3)
    conv = [rng.normal(size=(3, 3, 2, 4)) * 0.5, rng.normal(size=4)]
    fc = [rng.normal(size=(3 * 3 * 4, 6)) * 0.3, rng.normal(size=6)]
    scores = [rng.normal(size=(6, 3)), rng.normal(size=3)]
    boxes = [rng.normal(size=(6, 12)), rng.normal(size=12)]
    head.conv_0.set_weights(conv)
    head.fc_0.set_weights(fc)
    head.classifier.set_weights(scores)
    head.box_regressor.set_weights(boxes)
    conv_norm = set_norm(head.conv_norm_0, rng, 4)
    fc_norm = set_norm(head.fc_norm_0, rng, 6)

    class_outputs, box_outputs = head(inputs, training=False)
    x = inputs.reshape(6, 3, 3, 2).astype(np.float64)
    x = norm_relu(conv3x3(x, *conv), conv_norm)
    x = x.reshape(2, 3, 3 * 3 * 4)  # Each ROI flattened by rows, columns, channels.
    x = norm_relu(x @ fc[0] + fc[1], fc_norm)
    np.testing.assert_allclose(np.asarray(class_outputs), x @ scores[0] + scores[1], atol=1e-4)
    np.testing.assert_allclose(np.asarray(box_outputs), x @ boxes[0] + boxes[1], atol=1e-4)


@pytest.mark.parametrize(
    ("settings", "trainable", "total"),
    [
        # The layer's defaults: 2 dense layers of 1024 on 7x7x256 ROI features.
        ({}, 14_366_151, 14_370_247),
        # Model Garden's `configs.maskrcnn.DetectionHead` defaults: 4 convs, 1 dense layer.
        ({"num_convs": 4, "num_fcs": 1}, 15_676_871, 15_680_967),
        # Cascade R-CNN's class-agnostic boxes.
        ({"num_convs": 4, "num_fcs": 1, "class_agnostic_bbox_pred": True}, 15_307_871, 15_311_967),
    ],
)
def test_detection_head_sizes_by_hand(settings, trainable, total):
    # 91 COCO classes on 7x7x256 ROI features. The same totals were counted on
    # tf-models-official 2.20's DetectionHead.
    classes, side, channels, fc = 91, 7, 256, 1024
    num_convs, num_fcs = settings.get("num_convs", 0), settings.get("num_fcs", 2)
    convs = num_convs * ((9 * channels * channels + channels) + 2 * channels)
    flat = side * side * channels
    fcs = (flat * fc + fc + 2 * fc) + (num_fcs - 1) * (fc * fc + fc + 2 * fc)
    box_outputs = 4 if settings.get("class_agnostic_bbox_pred") else 4 * classes
    predictors = (fc * classes + classes) + (fc * box_outputs + box_outputs)
    assert convs + fcs + predictors == trainable
    moving = 2 * channels * num_convs + 2 * fc * num_fcs
    assert trainable + moving == total

    head = DetectionHead(num_classes=classes, **settings)
    head.build((None, 512, side, side, channels))
    assert n_params(head, trainable_only=True) == trainable
    assert n_params(head) == total


def test_detection_initialization_follows_model_garden():
    head = DetectionHead(num_classes=50, num_convs=1, num_filters=32, fc_dims=256)
    head.build((None, 4, 7, 7, 32))
    kernel = keras.ops.convert_to_numpy(head.conv_0.kernel)
    # He normal over the output fan: std sqrt(2 / (3 * 3 * 32)).
    assert abs(kernel.std() / np.sqrt(2 / (9 * 32)) - 1) < 0.05
    fc = keras.ops.convert_to_numpy(head.fc_1.kernel)
    # VarianceScaling(1/3, fan_out, uniform): U(-l, l) with l = sqrt(3 * (1/3) / 256).
    assert abs(np.abs(fc).max() / np.sqrt(1 / 256) - 1) < 0.01
    assert abs(keras.ops.convert_to_numpy(head.classifier.kernel).std() / 0.01 - 1) < 0.05
    assert abs(keras.ops.convert_to_numpy(head.box_regressor.kernel).std() / 0.001 - 1) < 0.05


def test_detection_shared_checks_and_saved_model_with_free_batch_and_rois(tmp_path):
    inputs = roi_features()

    def make():
        return DetectionHead(num_classes=4, num_convs=1, num_filters=8, fc_dims=16)

    model = model_checks.run_model_test(
        make,
        inputs,
        ((2, 3, 4), (2, 3, 16)),
        tmp_path,
        # A generic signature leaves the ROI size free, which the dense layers cannot take:
        # the SavedModel below fixes it and leaves the batch and ROI count free.
        run_saving=False,
        mixed_precision_policy="mixed_bfloat16",
        float32_outputs=lambda key: True,
    )
    model_checks.check_keras_file_round_trip(make(), inputs, tmp_path)
    check_saved_model(model, [inputs], [tf.TensorSpec([None, None, 4, 4, 8])], tmp_path)
    classes, _ = model(roi_features(batch=1, rois=5), training=False)
    assert tuple(classes.shape) == (1, 5, 4)


# === MaskHead ===


@pytest.mark.parametrize(("upsample_factor", "class_agnostic"), [(2, False), (3, True)])
def test_mask_logits_per_roi(upsample_factor, class_agnostic):
    head = MaskHead(
        num_classes=5,
        upsample_factor=upsample_factor,
        num_convs=1,
        num_filters=8,
        class_agnostic=class_agnostic,
    )
    masks = head((roi_features(), roi_classes(5)))
    side = 4 * upsample_factor
    assert tuple(masks.shape) == (2, 3, side, side)
    assert masks.dtype == "float32"
    assert head.mask_regressor.filters == (1 if class_agnostic else 5)


def test_mask_forward_matches_numpy_and_keeps_each_rois_class():
    num_classes = 4
    head = MaskHead(num_classes=num_classes, num_convs=1, num_filters=3)
    inputs, classes = roi_features(side=3, channels=2), roi_classes(num_classes)
    head([inputs, classes])
    rng = np.random.default_rng(4)
    conv = [rng.normal(size=(3, 3, 2, 3)) * 0.5, rng.normal(size=3)]
    up = [rng.normal(size=(2, 2, 3, 3)) * 0.5, rng.normal(size=3)]  # [s, s, out, in]
    logits = [rng.normal(size=(1, 1, 3, num_classes)), rng.normal(size=num_classes)]
    head.conv_0.set_weights(conv)
    head.deconv.set_weights(up)
    head.mask_regressor.set_weights(logits)
    conv_norm = set_norm(head.conv_norm_0, rng, 3)
    deconv_norm = set_norm(head.deconv_norm, rng, 3)

    masks = np.asarray(head([inputs, classes], training=False))
    x = inputs.reshape(6, 3, 3, 2).astype(np.float64)
    x = norm_relu(conv3x3(x, *conv), conv_norm)
    x = norm_relu(deconv(x, *up, stride=2), deconv_norm)
    every_class = (x @ logits[0][0, 0] + logits[1]).reshape(2, 3, 6, 6, num_classes)
    for image in range(2):
        for roi in range(3):
            expected = every_class[image, roi, :, :, classes[image, roi]]
            np.testing.assert_allclose(masks[image, roi], expected, atol=1e-4)


@pytest.mark.parametrize(
    ("settings", "trainable", "total"),
    [
        ({}, 2_648_667, 2_651_227),
        ({"use_separable_conv": True}, 560_987, 563_547),
        ({"class_agnostic": True}, 2_625_537, 2_628_097),
    ],
)
def test_mask_rcnn_mask_head_sizes_by_hand(settings, trainable, total):
    # Mask R-CNN's mask head: 4 convs of 256 on 14x14x256 ROI features, a 2x2 stride-2
    # transposed conv of 256, a 1x1 conv to 91 class maps. The same totals were counted on
    # tf-models-official 2.20's MaskHead.
    channels, classes = 256, 91
    if settings.get("use_separable_conv"):  # depthwise 3x3 + pointwise + bias
        conv = 9 * channels + channels * channels + channels
        logits = channels + channels * classes + classes  # depthwise 1x1 + pointwise + bias
    else:
        conv = 9 * channels * channels + channels
        maps = 1 if settings.get("class_agnostic") else classes
        logits = channels * maps + maps
    upsampling = 2 * 2 * channels * channels + channels
    norms = 5 * 2 * channels  # 4 conv norms and the upsampling's: gamma, beta.
    assert 4 * conv + upsampling + norms + logits == trainable
    assert trainable + norms == total  # + moving mean and variance.

    head = MaskHead(num_classes=classes, **settings)
    head.build([(None, 128, 14, 14, channels), (None, 128)])
    assert n_params(head, trainable_only=True) == trainable
    assert n_params(head) == total


def test_mask_shared_checks_keras_file_and_saved_model(tmp_path):
    inputs = [roi_features(), roi_classes(5)]

    def make():
        return MaskHead(num_classes=5, num_convs=2, num_filters=8)

    model = model_checks.run_model_test(
        make,
        inputs,
        (2, 3, 8, 8),
        tmp_path,
        run_saving=False,  # The generic checks take one array or a dict; see below.
        mixed_precision_policy="mixed_bfloat16",
        float32_outputs=lambda key: True,
    )
    features_in = keras.Input((3, 4, 4, 8))
    classes_in = keras.Input((3,), dtype="int32")
    wrapper = keras.Model([features_in, classes_in], make()([features_in, classes_in]))
    path = os.path.join(str(tmp_path), "mask_head.keras")
    wrapper.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        np.asarray(reloaded(inputs, training=False)),
        np.asarray(wrapper(inputs, training=False)),
        atol=1e-6,
    )
    signature = [tf.TensorSpec([None, None, 4, 4, 8]), tf.TensorSpec([None, None], tf.int32)]
    check_saved_model(model, inputs, signature, tmp_path)


# === Builders and errors ===


def test_builders_take_norm_activation_and_model_garden_config_defaults():
    norm = NormActivation(activation="swish", use_sync_bn=True, norm_momentum=0.997)
    detection = build_detection_head(
        (None, 512, 7, 7, 256),
        91,
        norm,
        keras.regularizers.L2(1e-4),
        cascade_class_ensemble=True,  # A field of the same config, read by the model.
    )
    # Model Garden's `configs.maskrcnn.DetectionHead` defaults.
    assert (detection.num_convs, detection.num_fcs, detection.fc_dims) == (4, 1, 1024)
    assert (detection.activation, detection.use_sync_bn, detection.norm_momentum) == (
        "swish",
        True,
        0.997,
    )
    assert isinstance(detection.kernel_regularizer, keras.regularizers.L2)

    mask = build_mask_head(
        [(None, 128, 14, 14, 256), (None, 128)], 91, norm, num_convs=2, class_agnostic=True
    )
    assert (mask.num_convs, mask.upsample_factor, mask.class_agnostic) == (2, 2, True)
    assert (mask.activation, mask.norm_momentum) == ("swish", 0.997)
    # Model Garden's factory passes no `use_sync_bn` to the mask head.
    assert mask.use_sync_bn is False


def test_config_round_trips_keep_every_setting():
    detection = DetectionHead(
        num_classes=7,
        num_convs=2,
        use_separable_conv=True,
        num_fcs=1,
        fc_dims=32,
        class_agnostic_bbox_pred=True,
        activation="relu6",
        kernel_regularizer=keras.regularizers.L2(1e-4),
    )
    mask = MaskHead(num_classes=7, upsample_factor=4, class_agnostic=True, norm_epsilon=1e-5)
    for head in (detection, mask):
        rebuilt = type(head).from_config(head.get_config())
        assert rebuilt.get_config() == head.get_config()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DetectionHead(num_classes=0), "num_classes"),
        (lambda: DetectionHead(num_classes=3, num_fcs=-1), "num_fcs"),
        (lambda: DetectionHead(num_classes=3, fc_dims=2.5), "fc_dims"),
        (lambda: DetectionHead(num_classes=3, activation="sparkle"), "sparkle"),
        (lambda: MaskHead(num_classes=3, upsample_factor=0), "upsample_factor"),
        (lambda: MaskHead(num_classes=3, num_filters=0), "num_filters"),
    ],
)
def test_bad_settings_are_clear_errors(make, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        make()


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="num_rois, height, width, channels"):
        DetectionHead(num_classes=3)(np.zeros((2, 7, 7, 8), "float32"))
    with pytest.raises(ConfigError, match="known height, width and channels"):
        build_detection_head((None, None, None, None, 8), 3, NormActivation())
    with pytest.raises(ValueError, match=r"\(roi_features, roi_classes\)"):
        MaskHead(num_classes=3).call(roi_features())
    with pytest.raises(ConfigError, match="MaskHead reads ROI features"):
        build_mask_head((None, 14, 14, 256), 3, NormActivation())
