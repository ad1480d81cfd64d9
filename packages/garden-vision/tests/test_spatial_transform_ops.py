"""ROIAlign over FPN levels, mask cropping and nearest upsampling.

Crops are compared with a NumPy ROIAlign written here: the FPN level rule of the Mask R-CNN
paper (`floor(log2(sqrt(area) / 224)) + 4`), one bilinear sample per bin at offset
`sample_offset`, and Model Garden's edge rules (upper neighbour clipped to the last row or
column, lower one clipped into the map, so coordinates past the end read the edge and
negative ones extrapolate from the first two rows).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops import spatial_transform_ops as st

IMAGE = 64
LEVELS = (2, 3, 4, 5)


def _features(rng, batch=2, channels=3):
    return {
        str(level): rng.normal(size=(batch, IMAGE >> level, IMAGE >> level, channels)).astype(
            np.float32
        )
        for level in LEVELS
    }


def numpy_bilinear(grid, y, x):
    """`grid` [H, W, C] at (y, x) with Model Garden's edge rules."""
    height, width = grid.shape[:2]
    y0 = min(max(math.floor(y), 0), height - 1)
    x0 = min(max(math.floor(x), 0), width - 1)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * grid[y0, x0]
        + (1 - ly) * lx * grid[y0, x1]
        + ly * (1 - lx) * grid[y1, x0]
        + ly * lx * grid[y1, x1]
    )


def numpy_level(box, min_level, max_level):
    area = (box[2] - box[0]) * (box[3] - box[1])
    if area <= 0:
        return min_level
    level = math.floor(math.log2(math.sqrt(area) / 224.0)) + 4
    return min(max(level, min_level), max_level)


def numpy_roi_align(features, boxes, output_size, offset):
    levels = sorted(int(k) for k in features)
    batch, count = boxes.shape[:2]
    channels = features[str(levels[0])].shape[-1]
    out = np.zeros((batch, count, output_size, output_size, channels))
    for b in range(batch):
        for n in range(count):
            box = boxes[b, n].astype(np.float64)
            level = numpy_level(box, levels[0], levels[-1])
            grid = features[str(level)][b].astype(np.float64)
            scale = 2.0**level
            ymin, xmin = box[0] / scale, box[1] / scale
            height, width = (box[2] - box[0]) / scale, (box[3] - box[1]) / scale
            for i in range(output_size):
                for j in range(output_size):
                    y = ymin + (i + offset) * height / output_size
                    x = xmin + (j + offset) * width / output_size
                    out[b, n, i, j] = numpy_bilinear(grid, y, x)
    return out


def test_level_assignment_follows_the_fpn_rule():
    sides = [224, 223, 112, 111.9, 448, 447, 896, 1000, 10, 1, 0]
    boxes = np.array([[5, 5, 5 + s, 5 + s] for s in sides], np.float32)
    levels = st.assign_box_levels(boxes, 2, 6).numpy()
    # floor(log2(side / 224)) + 4, clamped to [2, 6]; an empty box goes to the lowest level.
    np.testing.assert_array_equal(levels, [4, 3, 3, 2, 5, 4, 6, 6, 2, 2, 2])
    # A 100 x 400 box has sqrt(area) 200: level 3.
    assert st.assign_box_levels(np.array([[0, 0, 100, 400]], np.float32), 2, 6).numpy()[0] == 3


@pytest.mark.parametrize("offset", [0.5, 0.0])
def test_multilevel_crop_and_resize_matches_numpy_roi_align(offset):
    rng = np.random.default_rng(0)
    features = _features(rng)
    corner = rng.uniform(-6, 60, (2, 12, 2))
    sides = np.exp(rng.uniform(np.log(2), np.log(70), (2, 12, 2)))
    boxes = np.concatenate([corner, corner + sides], axis=-1).astype(np.float32)
    boxes[0, 0] = 0.0  # Padding.
    crops = st.multilevel_crop_and_resize(features, boxes, output_size=4, sample_offset=offset)
    assert crops.shape == (2, 12, 4, 4, 3)
    expected = numpy_roi_align(features, boxes, 4, offset)
    inside = (boxes.min(-1) >= 0) & (boxes.max(-1) <= IMAGE)
    np.testing.assert_allclose(crops.numpy()[inside], expected[inside], atol=1e-5)
    # Outside the image the edge rules multiply large weights: a looser tolerance.
    np.testing.assert_allclose(crops.numpy(), expected, atol=2e-3)


def test_roi_align_of_a_linear_ramp_reads_the_ramp_at_bin_centres():
    # Bilinear interpolation reproduces a linear function exactly: each bin of a box on
    # level 2 (stride 4) reads the ramp at its centre, in level-2 pixels.
    ys, xs = np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij")
    ramp = (2.0 * ys + 3.0 * xs + 1.0)[None, :, :, None].astype(np.float32)
    features = {"2": ramp, "3": ramp[:, ::2, ::2]}
    box = np.array([[[8.0, 4.0, 40.0, 28.0]]], np.float32)  # 32 x 24 pixels: level 2.
    crops = st.multilevel_crop_and_resize(features, box, output_size=2)[0, 0, :, :, 0]
    centres_y = (8.0 + np.array([8.0, 24.0])) / 4.0
    centres_x = (4.0 + np.array([6.0, 18.0])) / 4.0
    expected = 2.0 * centres_y[:, None] + 3.0 * centres_x[None, :] + 1.0
    np.testing.assert_allclose(crops.numpy(), expected, rtol=1e-6)


def test_crop_and_resize_in_graph_with_unknown_batch_and_bfloat16():
    rng = np.random.default_rng(1)
    features = _features(rng, batch=3)
    boxes = np.tile(np.array([[[4.0, 4.0, 40.0, 30.0], [0, 0, 64, 64]]], np.float32), [3, 1, 1])
    specs = (
        {k: tf.TensorSpec([None, *v.shape[1:]], tf.float32) for k, v in features.items()},
        tf.TensorSpec([None, None, 4], tf.float32),
    )
    crop = tf.function(lambda f, b: st.multilevel_crop_and_resize(f, b, 3), input_signature=specs)
    out = crop(features, boxes)
    np.testing.assert_allclose(out.numpy(), numpy_roi_align(features, boxes, 3, 0.5), atol=1e-5)
    half = {k: tf.cast(v, tf.bfloat16) for k, v in features.items()}
    assert st.multilevel_crop_and_resize(half, boxes, 3).dtype == tf.bfloat16


def test_crop_and_resize_errors():
    rng = np.random.default_rng(2)
    features = _features(rng)
    boxes = np.zeros((2, 1, 4), np.float32)
    with pytest.raises(ValueError, match=r"levels \[3\] are missing"):
        st.multilevel_crop_and_resize({"2": features["2"], "4": features["4"]}, boxes)
    with pytest.raises(ValueError, match="boxes must be"):
        st.multilevel_crop_and_resize(features, boxes[0])
    with pytest.raises(ValueError, match="output_size"):
        st.multilevel_crop_and_resize(features, boxes, output_size=0)
    with pytest.raises(ValueError, match="sample_offset"):
        st.multilevel_crop_and_resize(features, boxes, sample_offset=1.5)


def numpy_crop_mask(mask, box, target, output_size, offset):
    """The mask, padded by two zero pixels, sampled over `target` (mask covers `box`)."""
    height, width = mask.shape
    padded = np.pad(mask.astype(np.float64), 2)[..., None]
    out = np.zeros((output_size, output_size))
    scale_y = height / (box[2] - box[0])
    scale_x = width / (box[3] - box[1])
    for i in range(output_size):
        for j in range(output_size):
            y = (
                (target[0] - box[0]) * scale_y
                + 2
                + (i + offset) * (target[2] - target[0]) * scale_y / output_size
            )
            x = (
                (target[1] - box[1]) * scale_x
                + 2
                + (j + offset) * (target[3] - target[1]) * scale_x / output_size
            )
            out[i, j] = numpy_bilinear(padded, y, x)[0]
    return out


@pytest.mark.parametrize("use_einsum", [True, False])
def test_crop_mask_in_target_box_matches_numpy(use_einsum):
    rng = np.random.default_rng(3)
    masks = rng.uniform(size=(2, 3, 6, 9)).astype(np.float32)  # Not square.
    boxes = np.array([[10, 20, 22, 38], [0, 0, 30, 30], [5, 5, 9, 11]], np.float32)
    boxes = np.stack([boxes, boxes + 3.0])
    targets = boxes + rng.uniform(-4, 4, boxes.shape).astype(np.float32)
    for offset in (0.0, 0.5):
        crops = st.crop_mask_in_target_box(masks, boxes, targets, 5, offset, use_einsum)
        assert crops.shape == (2, 3, 5, 5)
        assert crops.dtype == tf.float32
        for b in range(2):
            for m in range(3):
                expected = numpy_crop_mask(masks[b, m], boxes[b, m], targets[b, m], 5, offset)
                np.testing.assert_allclose(crops[b, m].numpy(), expected, atol=1e-5)


def test_crop_mask_into_its_own_box_returns_the_mask():
    rng = np.random.default_rng(4)
    masks = (rng.uniform(size=(1, 2, 7, 7)) > 0.5).astype(np.float32)
    boxes = np.array([[[3, 4, 17, 25], [0, 0, 7, 7]]], np.float32)
    crops = st.crop_mask_in_target_box(masks, boxes, boxes, 7, sample_offset=0.0)
    np.testing.assert_allclose(crops.numpy(), masks, atol=1e-5)
    with pytest.raises(ValueError, match="masks must be"):
        st.crop_mask_in_target_box(masks[0], boxes, boxes, 7)


@pytest.mark.parametrize("use_keras_layer", [False, True])
def test_nearest_upsampling(use_keras_layer):
    data = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    out = st.nearest_upsampling(data, 3, use_keras_layer=use_keras_layer)
    np.testing.assert_array_equal(out.numpy(), data.repeat(3, axis=1).repeat(3, axis=2))
    graph = tf.function(
        lambda x: st.nearest_upsampling(x, 2), input_signature=[tf.TensorSpec([None, 3, 4, 2])]
    )
    assert graph.get_concrete_function().structured_outputs.shape.as_list() == [None, 6, 8, 2]
    with pytest.raises(ValueError, match="scale"):
        st.nearest_upsampling(data, 0)
