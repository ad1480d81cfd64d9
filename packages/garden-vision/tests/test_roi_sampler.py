"""ROISampler: matching proposals to ground truth (hand-computed IoUs) and sampling them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.modeling.layers.roi_sampler import ROISampler, build_roi_samplers

GT_BOXES = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [-1, -1, -1, -1]]], np.float32)
GT_CLASSES = np.array([[3, 5, -1]], np.int32)
# IoU with the best ground-truth box: 1.0 (A), 0.5 (A), 0.4 (A), 0.6 (B), 0, padding.
PROPOSALS = np.array(
    [
        [
            [0, 0, 10, 10],
            [0, 0, 10, 5],
            [0, 0, 10, 4],
            [20, 20, 30, 26],
            [40, 40, 50, 50],
            [-1, -1, -1, -1],
        ]
    ],
    np.float32,
)


def test_matching_with_model_garden_default_thresholds():
    sampler = ROISampler(mix_gt_boxes=False, skip_subsampling=True)
    rois, gt_boxes, gt_classes, gt_indices = sampler(PROPOSALS, GT_BOXES, GT_CLASSES)
    np.testing.assert_array_equal(rois.numpy(), PROPOSALS)
    # IoU >= 0.5 is foreground; [0, 0.5) background; padding is background too.
    np.testing.assert_array_equal(gt_classes[0], [3, 3, 0, 5, 0, 0])
    np.testing.assert_array_equal(gt_indices[0], [0, 0, -1, 1, -1, -1])
    expected_boxes = np.zeros((6, 4), np.float32)
    expected_boxes[[0, 1]] = GT_BOXES[0, 0]
    expected_boxes[3] = GT_BOXES[0, 1]
    np.testing.assert_array_equal(gt_boxes[0], expected_boxes)
    assert gt_classes.dtype == tf.int32


def test_ignored_band_and_mixed_ground_truth_and_outer_boxes():
    sampler = ROISampler(
        foreground_iou_threshold=0.55,
        background_iou_high_threshold=0.45,
        background_iou_low_threshold=0.1,
        skip_subsampling=True,
    )
    outer = GT_BOXES + np.array([-1, -1, 1, 1], np.float32) * (GT_BOXES >= 0)
    rois, gt_boxes, gt_outer, gt_classes, gt_indices = sampler(
        PROPOSALS, GT_BOXES, GT_CLASSES, gt_outer_boxes=outer
    )
    # The ground truth joins the proposals (3 more rows).
    np.testing.assert_array_equal(rois[0, 6:], GT_BOXES[0])
    # 0.5 falls between the thresholds: ignored, but it keeps its match (as Model Garden);
    # 0.4 is background; IoU 0 is below the low threshold: invalid, background class.
    np.testing.assert_array_equal(gt_classes[0], [3, 3, 0, 5, 0, 0, 3, 5, 0])
    np.testing.assert_array_equal(gt_indices[0], [0, 0, -1, 1, -1, -1, 0, 1, -1])
    np.testing.assert_array_equal(gt_outer[0, 0], [-1, -1, 11, 11])
    np.testing.assert_array_equal(gt_outer[0, 2], [0, 0, 0, 0])
    np.testing.assert_array_equal(gt_boxes[0, 7], GT_BOXES[0, 1])


def _many_proposals(rng, batch=2, count=60):
    centres = rng.uniform(10, 50, (batch, count, 2))
    sizes = rng.uniform(4, 14, (batch, count, 2))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)


def _iou_matrix(boxes, gt):
    """Pairwise IoU [N, M] of real (non-padded) boxes."""
    low = np.maximum(boxes[:, None, :2], gt[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], gt[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    gt_area = np.prod(gt[:, 2:] - gt[:, :2], axis=-1)
    return inter / (area[:, None] + gt_area[None] - inter)


def test_sampling_counts_and_consistent_targets():
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    proposals = _many_proposals(rng)
    gt_boxes = np.stack([proposals[0, :4], proposals[1, :4]]) + 0.5
    gt_classes = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int32)
    sampler = ROISampler(num_sampled_rois=16, foreground_fraction=0.25)
    rois, matched_boxes, classes, indices = (
        t.numpy() for t in sampler(proposals, gt_boxes, gt_classes)
    )
    assert rois.shape == (2, 16, 4)
    assert classes.shape == (2, 16)
    for b in range(2):
        pool = np.concatenate([proposals[b], gt_boxes[b]])  # mix_gt_boxes
        best_iou = _iou_matrix(pool, gt_boxes[b]).max(1)
        num_foreground = int((best_iou >= 0.5).sum())
        assert (classes[b] > 0).sum() == min(4, num_foreground)  # int(16 * 0.25)
        # Every sampled roi is a distinct pool entry; its targets are its best match.
        rows = [int(np.flatnonzero((pool == roi).all(1))[0]) for roi in rois[b]]
        assert len(set(rows)) == 16
        targets = zip(rows, classes[b], indices[b], matched_boxes[b], strict=True)
        for roi_row, cls, index, box in targets:
            if cls > 0:
                assert index == np.argmax(_iou_matrix(pool[roi_row : roi_row + 1], gt_boxes[b]))
                assert cls == gt_classes[b, index]
                np.testing.assert_array_equal(box, gt_boxes[b, index])
            else:
                assert index == -1
                assert not box.any()


def test_sampling_is_random_over_foreground():
    tf.random.set_seed(1)
    proposals = np.tile(np.array([[[0, 0, 10, 10]]], np.float32), [1, 40, 1])
    proposals[0, 8:] += 30.0  # 8 foreground proposals, 32 background.
    proposals[0, :8, 2] += np.arange(8) * 0.1  # Tell them apart.
    sampler = ROISampler(mix_gt_boxes=False, num_sampled_rois=8, foreground_fraction=0.25)
    seen = set()
    for _ in range(40):
        rois, _, classes, _ = sampler(proposals, GT_BOXES, GT_CLASSES)
        assert (classes.numpy() == 3).sum() == 2
        seen.update(np.round(rois[0, :, 2].numpy()[classes[0].numpy() == 3], 1).tolist())
    assert len(seen) == 8  # Every foreground proposal gets sampled sometime.


def test_cascade_samplers_serialization_graph_mode_and_errors():
    samplers = build_roi_samplers(num_sampled_rois=64, cascade_iou_thresholds=[0.6, 0.7])
    assert len(samplers) == 3
    assert samplers[0].mix_gt_boxes
    assert not samplers[0].skip_subsampling
    for sampler, iou in zip(samplers[1:], [0.6, 0.7], strict=True):
        config = sampler.get_config()
        assert config["foreground_iou_threshold"] == config["background_iou_high_threshold"] == iou
        assert config["skip_subsampling"]
        assert not config["mix_gt_boxes"]
        assert config["background_iou_low_threshold"] == 0.0

    sampler = ROISampler(num_sampled_rois=8, name="sampler")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
    assert isinstance(clone, ROISampler)
    assert clone.get_config() == sampler.get_config()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, 4], tf.float32),
            tf.TensorSpec([None, None, 4], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
        ]
    )
    def sample(boxes, gt_boxes, gt_classes):
        return clone(boxes, gt_boxes, gt_classes)

    proposals = _many_proposals(np.random.default_rng(2), batch=3, count=20)
    rois, _, classes, _ = sample(
        proposals, np.tile(GT_BOXES, [3, 1, 1]), np.tile(GT_CLASSES, [3, 1])
    )
    assert rois.shape == (3, 8, 4)
    assert classes.shape == (3, 8)
    with pytest.raises(ValueError, match="background_iou_high_threshold <= foreground"):
        ROISampler(foreground_iou_threshold=0.4, background_iou_high_threshold=0.5)
