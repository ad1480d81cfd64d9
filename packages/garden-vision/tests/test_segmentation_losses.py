"""SegmentationLoss against a NumPy reference of Model Garden's normalization: the mean over
valid pixels, ignore_label, class weights, label smoothing, top-k pixel mining, sigmoid
cross-entropy over several label layers, matting maps, and resizing logits or labels."""

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.losses.segmentation_losses import SegmentationLoss

IGNORE = 255
EPSILON = 1e-5  # Model Garden's `segmentation_losses.EPSILON`.


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _normalize(losses, num_valid, top_k):
    """Model Garden's reduction: mean over valid pixels, or over the top-k losses."""
    if top_k < 1.0:
        flat = np.sort(losses.reshape(-1))[::-1]
        k = int(np.float32(top_k) * np.float32(flat.size))
        return flat[:k].sum() / (min(k, num_valid) + EPSILON)
    return losses.sum() / (num_valid + EPSILON)


def reference_softmax(logits, labels, smoothing=0.0, weights=None, top_k=1.0):
    """Softmax cross-entropy on `[B, H, W, C]` logits and `[B, H, W, 1]` labels."""
    num_classes = logits.shape[-1]
    weights = np.ones(num_classes) if weights is None else np.asarray(weights, np.float64)
    label = labels[..., 0].astype(np.int64)
    valid = label != IGNORE
    one_hot = (label[..., None] == np.arange(num_classes)) & valid[..., None]
    targets = one_hot * (1.0 - smoothing) + smoothing / num_classes
    cross_entropy = -(targets * _log_softmax(logits.astype(np.float64))).sum(-1)
    known = (label >= 0) & (label < num_classes)
    pixel_weights = np.where(known, weights[np.clip(label, 0, num_classes - 1)], 0.0)
    losses = cross_entropy * pixel_weights * valid
    return _normalize(losses, valid.sum(), top_k)


def reference_sigmoid(logits, labels, smoothing=0.0, weights=None, top_k=1.0):
    """Sigmoid cross-entropy on `[B, H, W, C]` logits and `[B, H, W, L]` label layers."""
    num_classes = logits.shape[-1]
    weights = np.ones(num_classes) if weights is None else np.asarray(weights, np.float64)
    valid_layers = labels != IGNORE
    targets = np.zeros(logits.shape)
    for layer in range(labels.shape[-1]):
        hit = (labels[..., layer : layer + 1] == np.arange(num_classes)) & valid_layers[
            ..., layer : layer + 1
        ]
        targets = np.maximum(targets, hit)
    targets = targets * (1.0 - smoothing) + smoothing / num_classes
    x = logits.astype(np.float64)
    losses = np.maximum(x, 0) - x * targets + np.log1p(np.exp(-np.abs(x)))
    valid = valid_layers.any(-1)
    losses = losses * weights * valid[..., None]
    return _normalize(losses, valid.sum() * num_classes, top_k)


def bilinear_resize(images, height, width):
    """`tf.image.resize` bilinear (half-pixel centres) of `[B, h, w, C]`, in NumPy."""

    def positions(out_size, in_size):
        source = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
        lower = np.floor(source).astype(int)
        upper = np.minimum(lower + 1, in_size - 1)
        return lower, upper, source - lower

    y0, y1, wy = positions(height, images.shape[1])
    x0, x1, wx = positions(width, images.shape[2])
    rows = images[:, y0] * (1 - wy)[None, :, None, None] + images[:, y1] * wy[None, :, None, None]
    return rows[:, :, x0] * (1 - wx)[None, None, :, None] + rows[:, :, x1] * wx[None, None, :, None]


def _data(seed, shape=(2, 4, 8), num_classes=4, layers=1, ignored=0.2, out_of_range=0.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (*shape, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, (*shape, layers))
    labels[rng.random(labels.shape) < ignored] = IGNORE
    labels[rng.random(labels.shape) < out_of_range] = num_classes + 3
    return logits, labels.astype(np.int32)


def _loss(logits, labels, **kwargs):
    settings = {"label_smoothing": 0.0, "class_weights": [], "ignore_label": IGNORE}
    settings.update(kwargs)
    return float(SegmentationLoss(**settings)(tf.constant(logits), tf.constant(labels)))


def test_mean_over_valid_pixels_with_ignored_and_out_of_range_labels():
    logits, labels = _data(0, out_of_range=0.1)
    expected = reference_softmax(logits, labels)
    np.testing.assert_allclose(_loss(logits, labels), expected, rtol=1e-5)


def test_hand_computed_two_pixel_case():
    # Two classes, uniform logits: each valid pixel costs log(2); the ignored one nothing.
    logits = np.zeros([1, 1, 3, 2], np.float32)
    labels = np.array([[[[0], [1], [IGNORE]]]], np.int32)
    np.testing.assert_allclose(_loss(logits, labels), 2 * np.log(2) / (2 + EPSILON), rtol=1e-6)
    # Class weights 3 and 0.5 weight each pixel's loss by its label's weight.
    weighted = _loss(logits, labels, class_weights=[3.0, 0.5])
    np.testing.assert_allclose(weighted, 3.5 * np.log(2) / (2 + EPSILON), rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_class_weights_and_label_smoothing(smoothing):
    logits, labels = _data(1, num_classes=5, out_of_range=0.05)
    weights = [0.5, 2.0, 1.0, 0.0, 3.0]
    expected = reference_softmax(logits, labels, smoothing=smoothing, weights=weights)
    actual = _loss(logits, labels, label_smoothing=smoothing, class_weights=weights)
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


@pytest.mark.parametrize("top_k", [0.25, 0.5])
def test_top_k_pixel_mining(top_k):
    logits, labels = _data(2, shape=(2, 4, 4), ignored=0.3)
    expected = reference_softmax(logits, labels, top_k=top_k)
    np.testing.assert_allclose(_loss(logits, labels, top_k_percent_pixels=top_k), expected, 1e-5)


def test_top_k_divides_by_the_valid_count_when_fewer_pixels_are_valid():
    logits, labels = _data(3, shape=(1, 4, 4), ignored=0.0)
    labels[:, :, :3] = IGNORE  # 4 valid pixels of 16; the top 50% are 8.
    expected = reference_softmax(logits, labels, top_k=0.5)
    np.testing.assert_allclose(_loss(logits, labels, top_k_percent_pixels=0.5), expected, 1e-5)


@pytest.mark.parametrize(("smoothing", "top_k"), [(0.0, 1.0), (0.2, 1.0), (0.0, 0.5)])
def test_binary_cross_entropy_over_several_label_layers(smoothing, top_k):
    logits, labels = _data(4, num_classes=3, layers=2)
    weights = [1.0, 2.0, 0.5]
    expected = reference_sigmoid(logits, labels, smoothing, weights, top_k)
    actual = _loss(
        logits,
        labels,
        use_binary_cross_entropy=True,
        class_weights=weights,
        label_smoothing=smoothing,
        top_k_percent_pixels=top_k,
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_logits_are_resized_bilinearly_to_the_labels():
    logits, _ = _data(5, shape=(2, 3, 4))
    _, labels = _data(6, shape=(2, 6, 8))
    resized = bilinear_resize(logits.astype(np.float64), 6, 8)
    np.testing.assert_allclose(_loss(logits, labels), reference_softmax(resized, labels), 1e-5)


def test_labels_are_resized_to_the_logits_without_groundtruth_dimension():
    logits, small = _data(7, shape=(2, 3, 4))
    # Labels constant on 2x2 blocks: nearest-neighbour downsampling picks each block's value.
    labels = np.repeat(np.repeat(small, 2, axis=1), 2, axis=2)
    actual = _loss(logits, labels, use_groundtruth_dimension=False)
    np.testing.assert_allclose(actual, reference_softmax(logits, small), rtol=1e-5)


def test_matting_maps_use_soft_targets_and_binarized_weights():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(2, 3, 5, 2)).astype(np.float32)
    alpha = rng.random((2, 3, 5, 1)).astype(np.float32)
    alpha[0, 0, :2] = IGNORE
    weights = [1.0, 4.0]
    valid = alpha[..., 0] != IGNORE
    smoothing = 0.1
    targets = np.concatenate([1 - alpha, alpha], -1) * (1 - smoothing) + smoothing / 2
    cross_entropy = -(targets * _log_softmax(logits.astype(np.float64))).sum(-1)
    pixel_weights = np.where(alpha[..., 0] > 0.5, weights[1], weights[0])
    expected = (cross_entropy * pixel_weights * valid).sum() / (valid.sum() + EPSILON)
    actual = _loss(
        logits, alpha, gt_is_matting_map=True, class_weights=weights, label_smoothing=smoothing
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_all_ignored_gives_zero_and_gradients_flow_in_tf_function():
    loss_fn = SegmentationLoss(0.0, None, IGNORE)
    logits, labels = _data(9)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 4, 8, 4], tf.float32),
            tf.TensorSpec([None, 4, 8, 1], tf.int32),
        ]
    )
    def loss_and_gradient(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_fn(x, y)
        return loss, tape.gradient(loss, x)

    loss, gradient = loss_and_gradient(logits, labels)
    np.testing.assert_allclose(float(loss), reference_softmax(logits, labels), rtol=1e-5)
    ignored = labels[..., 0] == IGNORE
    assert np.all(gradient.numpy()[ignored] == 0)
    assert np.any(gradient.numpy()[~ignored] != 0)
    loss, _ = loss_and_gradient(logits, np.full_like(labels, IGNORE))
    assert float(loss) == 0.0


def test_bad_arguments_are_named():
    logits, labels = _data(10)
    with pytest.raises(ValueError, match="class_weights has 2 values"):
        _loss(logits, labels, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="labels have 2 layers"):
        _loss(logits, np.concatenate([labels, labels], -1))
    with pytest.raises(ValueError, match="gt_is_matting_map needs 2 classes"):
        _loss(logits, labels.astype(np.float32), gt_is_matting_map=True)
    with pytest.raises(ValueError, match="label_smoothing"):
        SegmentationLoss(1.0, [], IGNORE)
    with pytest.raises(ValueError, match="top_k_percent_pixels"):
        SegmentationLoss(0.0, [], IGNORE, top_k_percent_pixels=0.0)
