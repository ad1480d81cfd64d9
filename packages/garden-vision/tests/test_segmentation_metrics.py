"""MeanIoU and PerClassIoU against a NumPy confusion-matrix IoU: ignored pixels, logits
resized to the masks, predictions rescaled to each image's original size with image_info,
tf.function with an unknown batch, and sums across the replicas of a MirroredStrategy."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.evaluation.segmentation_metrics import MeanIoU, PerClassIoU

IGNORE = 255


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


def confusion(labels, predictions, valid, num_classes):
    matrix = np.zeros([num_classes, num_classes])
    np.add.at(matrix, (labels[valid], predictions[valid]), 1)
    return matrix


def ious(matrix):
    true_positives = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - true_positives
    per_class = np.where(union > 0, true_positives / np.maximum(union, 1), 0.0)
    return per_class, per_class[union > 0].mean()


def _batch(seed, batch=3, size=(8, 10), logits_size=None, num_classes=5):
    rng = np.random.default_rng(seed)
    logits_size = logits_size or size
    logits = rng.normal(size=(batch, *logits_size, num_classes)).astype(np.float32)
    masks = rng.integers(0, num_classes, (batch, *size, 1)).astype(np.float32)
    masks[rng.random(masks.shape) < 0.2] = IGNORE
    image_info = np.tile(
        np.array([[*size], [*size], [1.0, 1.0], [0.0, 0.0]], np.float32), [batch, 1, 1]
    )
    return logits, {"masks": masks, "valid_masks": masks != IGNORE, "image_info": image_info}


def _update(metric, labels, logits):
    metric.update_state({k: tf.constant(v) for k, v in labels.items()}, tf.constant(logits))


def test_same_size_logits_match_numpy_over_several_batches():
    mean, per_class = MeanIoU(5, name="mean_iou"), PerClassIoU(5, name="per_class_iou")
    matrix = np.zeros([5, 5])
    for seed in range(3):
        logits, labels = _batch(seed)
        for metric in (mean, per_class):
            _update(metric, labels, logits)
        valid = labels["valid_masks"][..., 0]
        matrix += confusion(
            labels["masks"][..., 0].astype(int), logits.argmax(-1), valid, num_classes=5
        )
    expected_per_class, expected_mean = ious(matrix)
    np.testing.assert_allclose(per_class.result().numpy(), expected_per_class, rtol=1e-6)
    np.testing.assert_allclose(float(mean.result()), expected_mean, rtol=1e-6)
    assert mean.result().dtype == "float32"


def test_hand_computed_iou_and_absent_classes():
    # 4 pixels: labels [0, 0, 1, ignored], predictions [0, 1, 1, 2]; class 2 is absent.
    logits = np.eye(3, dtype=np.float32)[[0, 1, 1, 2]].reshape(1, 1, 4, 3)
    masks = np.array([0, 0, 1, IGNORE], np.float32).reshape(1, 1, 4, 1)
    labels = {"masks": masks, "valid_masks": masks != IGNORE, "image_info": np.zeros([1, 4, 2])}
    per_class, mean = PerClassIoU(3), MeanIoU(3)
    for metric in (per_class, mean):
        _update(metric, labels, logits)
    # Class 0: TP 1, FN 1 -> 1/2. Class 1: TP 1, FP 1 -> 1/2. Class 2: no pixels -> 0.
    np.testing.assert_allclose(per_class.result().numpy(), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(float(mean.result()), 0.5)  # Absent classes are not averaged.
    mean.reset_state()
    assert float(mean.result()) == 0.0


def test_logits_are_resized_bilinearly_to_the_masks():
    logits, labels = _batch(3, size=(8, 10), logits_size=(4, 5))
    metric = PerClassIoU(5)
    _update(metric, labels, logits)
    predictions = bilinear_resize(logits.astype(np.float64), 8, 10).argmax(-1)
    matrix = confusion(
        labels["masks"][..., 0].astype(int), predictions, labels["valid_masks"][..., 0], 5
    )
    np.testing.assert_allclose(metric.result().numpy(), ious(matrix)[0], rtol=1e-6)


def test_rescaled_predictions_follow_each_images_original_size_and_offset():
    rng = np.random.default_rng(4)
    num_classes, input_size, mask_size = 4, 16, (14, 13)
    # (original size, scaled size, crop offset) of three images in a 16x16 model input.
    images = [((10, 7), (16, 11), (0, 0)), ((6, 13), (7, 16), (0, 0)), ((12, 12), (16, 16), (2, 1))]
    logits = rng.normal(size=(3, 8, 8, num_classes)).astype(np.float32)
    masks = rng.integers(0, num_classes, (3, *mask_size, 1)).astype(np.float32)
    masks[rng.random(masks.shape) < 0.1] = IGNORE
    image_info = np.array(
        [
            [original, [input_size] * 2, np.divide(scaled, original), offset]
            for original, scaled, offset in images
        ],
        np.float32,
    )
    labels = {"masks": masks, "valid_masks": masks != IGNORE, "image_info": image_info}
    metric = PerClassIoU(num_classes, rescale_predictions=True)
    _update(metric, labels, logits)

    matrix = np.zeros([num_classes, num_classes])
    for i, (original, _, offset) in enumerate(images):
        # The logits cover the 16x16 input: in original pixels, ceil(16 / scale) per side,
        # shifted by the crop offset; only the original image's pixels are scored.
        rescaled = np.ceil(np.float32(input_size) / image_info[i, 2]).astype(int)
        resized = bilinear_resize(logits[i : i + 1].astype(np.float64), *rescaled)[0]
        height, width = original
        window = resized[offset[0] : offset[0] + height, offset[1] : offset[1] + width]
        predictions = np.zeros([height, width], int)
        predictions[: window.shape[0], : window.shape[1]] = window.argmax(-1)
        truth = masks[i, :height, :width, 0]
        matrix += confusion(truth.astype(int), predictions, truth != IGNORE, num_classes)
    np.testing.assert_allclose(metric.result().numpy(), ious(matrix)[0], rtol=1e-6)


def test_tf_function_with_unknown_batch_and_replica_lists():
    logits, labels = _batch(5, batch=4)
    metric = MeanIoU(5, rescale_predictions=True)

    @tf.function(
        input_signature=[
            {
                "masks": tf.TensorSpec([None, 8, 10, 1], tf.float32),
                "valid_masks": tf.TensorSpec([None, 8, 10, 1], tf.bool),
                "image_info": tf.TensorSpec([None, 4, 2], tf.float32),
            },
            tf.TensorSpec([None, 8, 10, 5], tf.float32),
        ]
    )
    def update(y_true, y_pred):
        metric.update_state(y_true, y_pred)

    update(labels, logits)
    eager = MeanIoU(5)
    halves = {key: [value[:2], value[2:]] for key, value in labels.items()}
    eager.update_state(halves, [logits[:2], logits[2:]])
    np.testing.assert_allclose(float(metric.result()), float(eager.result()), rtol=1e-6)


def test_config_round_trip_and_sample_weight_refused():
    metric = PerClassIoU(7, rescale_predictions=True, name="iou")
    clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(clone, PerClassIoU)
    assert (clone.num_classes, clone.rescale_predictions, clone.name) == (7, True, "iou")
    logits, labels = _batch(6, num_classes=7)
    with pytest.raises(ValueError, match="sample_weight"):
        metric.update_state(labels, logits, sample_weight=np.ones([3]))
    with pytest.raises(ValueError, match="num_classes"):
        MeanIoU(0)


# Runs in a fresh interpreter: logical devices must be configured before TF initialises.
_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import numpy as np

    from garden_vision.evaluation.segmentation_metrics import MeanIoU, PerClassIoU

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6, 6, 3)).astype(np.float32)
    masks = rng.integers(0, 3, (4, 6, 6, 1)).astype(np.float32)
    masks[rng.random(masks.shape) < 0.2] = 255
    info = np.tile(np.array([[6, 6], [6, 6], [1, 1], [0, 0]], np.float32), [4, 1, 1])
    labels = {"masks": masks, "valid_masks": masks != 255, "image_info": info}

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mean, per_class = MeanIoU(3), PerClassIoU(3)
    dataset = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def step(batch):
        def update(y_true, y_pred):
            mean.update_state(y_true, y_pred)
            per_class.update_state(y_true, y_pred)
            return tf.shape(y_pred)[0]

        return strategy.run(update, args=batch)

    local_sizes = strategy.experimental_local_results(step(batch))
    print(json.dumps({
        "local_batch_sizes": [int(s) for s in local_sizes],
        "mean": float(mean.result()),
        "per_class": per_class.result().numpy().tolist(),
        "logits": logits.tolist(),
        "masks": masks.tolist(),
    }))
    """
)


def test_mirrored_replicas_sum_their_confusion_matrices():
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["local_batch_sizes"] == [2, 2]  # Each replica saw half of the batch.
    masks = np.array(record["masks"])[..., 0]
    predictions = np.array(record["logits"]).argmax(-1)
    per_class, mean = ious(confusion(masks.astype(int), predictions, masks != IGNORE, 3))
    np.testing.assert_allclose(record["per_class"], per_class, rtol=1e-6)
    np.testing.assert_allclose(record["mean"], mean, rtol=1e-6)
