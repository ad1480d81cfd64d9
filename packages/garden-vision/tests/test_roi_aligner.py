"""MultilevelROIAligner: the layer around `multilevel_crop_and_resize`.

The crops themselves are checked against a NumPy ROIAlign in `test_spatial_transform_ops`;
here a hand-computed crop, serialization, graph mode and mixed precision.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.modeling.layers.roi_aligner import MultilevelROIAligner
from garden_vision.ops import spatial_transform_ops


def _features(batch=2, channels=4):
    rng = np.random.default_rng(0)
    return {
        str(level): rng.normal(size=(batch, 64 >> level, 64 >> level, channels)).astype(np.float32)
        for level in (2, 3, 4)
    }


def test_constant_levels_show_which_level_each_box_reads():
    # Level l is filled with l: each crop reads its box's FPN level (sqrt(area) / 224 rule).
    features = {str(level): np.full((1, 256 >> level, 256 >> level, 1), level, np.float32)
                for level in (2, 3, 4, 5)}  # fmt: skip
    boxes = np.array([[[0, 0, 50, 50], [0, 0, 120, 120], [10, 10, 250, 250], [0, 0, 0, 0]]])
    crops = MultilevelROIAligner(crop_size=2)(features, boxes.astype(np.float32))
    expected_levels = np.array([2, 3, 4, 2], np.float32)
    np.testing.assert_allclose(
        crops.numpy()[0, :, :, :, 0], np.broadcast_to(expected_levels[:, None, None], (4, 2, 2))
    )


def test_layer_matches_op_serializes_and_runs_in_graph_mode():
    features = _features()
    boxes = np.array([[[2, 3, 30, 40], [0, 0, 64, 64]]] * 2, np.float32)
    aligner = MultilevelROIAligner(crop_size=5, sample_offset=0.25, name="aligner")
    expected = spatial_transform_ops.multilevel_crop_and_resize(features, boxes, 5, 0.25)
    np.testing.assert_array_equal(aligner(features, boxes).numpy(), expected.numpy())

    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(aligner))
    assert isinstance(clone, MultilevelROIAligner)
    assert clone.get_config() == aligner.get_config()
    specs = (
        {k: tf.TensorSpec([None, *v.shape[1:]]) for k, v in features.items()},
        tf.TensorSpec([None, None, 4]),
    )
    graph = tf.function(lambda f, b: clone(f, b, training=True), input_signature=specs)
    np.testing.assert_allclose(graph(features, boxes).numpy(), expected.numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="crop_size"):
        MultilevelROIAligner(crop_size=0)


def test_mixed_precision_keeps_feature_dtype_and_full_precision_boxes():
    features = _features(batch=1)
    boxes = np.array([[[2.3, 3.7, 30.1, 40.9]]], np.float32)  # Not representable in bf16.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        aligner = MultilevelROIAligner(crop_size=3)
        half = {k: tf.cast(v, tf.bfloat16) for k, v in features.items()}
        crops = aligner(half, tf.constant(boxes))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert crops.dtype == tf.bfloat16
    expected = spatial_transform_ops.multilevel_crop_and_resize(half, boxes, 3)
    np.testing.assert_array_equal(crops.numpy(), expected.numpy())
