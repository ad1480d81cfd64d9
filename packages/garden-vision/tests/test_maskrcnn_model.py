"""`MaskRCNNModel` built by `factory.build_maskrcnn`: Faster, Mask and Cascade R-CNN."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_fpn import shapes_only, trainable_params

from garden_core import experiment_factory
from garden_core.testing import models as model_checks
from garden_vision.configs import maskrcnn
from garden_vision.losses import maskrcnn_losses
from garden_vision.modeling import factory
from garden_vision.modeling.maskrcnn_model import MaskRCNNModel

# Trainable parameters of Model Garden's own models for these experiments (tf-models-official
# 2.20: `official.vision.modeling.factory.build_maskrcnn` on `exp_factory.get_exp_config(NAME)
# .task.model`, counted after one call).
MODEL_GARDEN_COUNTS = {
    "fasterrcnn_resnetfpn_coco": 43_718_422,
    "maskrcnn_resnetfpn_coco": 46_367_089,
    "cascadercnn_spinenet_coco": 71_000_263,
}
SIZE = 64


@pytest.mark.parametrize("name", sorted(MODEL_GARDEN_COUNTS))
def test_parameter_counts_equal_model_gardens(name):
    config = experiment_factory.get_experiment_config(name).task.model
    with shapes_only():
        model = factory.build_maskrcnn(
            keras.layers.InputSpec(shape=[None, *config.input_size]), config
        )
        assert trainable_params(model) == MODEL_GARDEN_COUNTS[name]


def _tiny_config(cascade=False, include_mask=True):
    config = maskrcnn.shapes_instance_segmentation().task.model
    config.input_size = [SIZE, SIZE, 3]
    config.roi_generator.num_proposals = 24
    config.roi_generator.test_num_proposals = 24
    config.roi_sampler.num_sampled_rois = 16
    config.mask_sampler.num_sampled_masks = 4
    config.detection_generator.max_num_detections = 6
    if cascade:
        config.roi_sampler.cascade_iou_thresholds = [0.6, 0.7]
        config.detection_head.class_agnostic_bbox_pred = True
        config.detection_head.cascade_class_ensemble = True
    if not include_mask:
        config.include_mask = False
        config.mask_head = config.mask_sampler = config.mask_roi_aligner = None
    config.validate()
    return config


def _batch():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(size=(2, SIZE, SIZE, 3)), tf.float32)
    image_shape = tf.constant([[SIZE, SIZE], [48, 56]], tf.float32)
    gt_boxes = tf.constant(
        [
            [[4, 6, 40, 30], [20, 20, 60, 62], [-1, -1, -1, -1]],
            [[0, 0, 30, 30], [-1] * 4, [-1] * 4],
        ],
        tf.float32,
    )
    gt_classes = tf.constant([[2, 5, -1], [9, -1, -1]], tf.int32)
    gt_masks = tf.constant(rng.uniform(size=(2, 3, 28, 28)) > 0.5, tf.float32)
    return images, image_shape, gt_boxes, gt_classes, gt_masks


def _build(config):
    return factory.build_maskrcnn(keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3]), config)


def test_training_outputs_feed_the_losses_and_every_weight_gets_a_gradient():
    config = _tiny_config()
    model = _build(config)
    images, image_shape, gt_boxes, gt_classes, gt_masks = _batch()
    with tf.GradientTape() as tape:
        outputs = model(
            images,
            image_shape,
            gt_boxes=gt_boxes,
            gt_classes=gt_classes,
            gt_masks=gt_masks,
            training=True,
        )
        assert outputs["class_outputs"].shape == (2, 16, config.num_classes)
        assert outputs["box_outputs"].shape == (2, 16, 4 * config.num_classes)
        assert outputs["class_targets"].shape == (2, 16)
        assert outputs["box_targets"].shape == (2, 16, 4)
        assert outputs["mask_outputs"].shape == (2, 4, 28, 28)
        assert outputs["mask_targets"].shape == (2, 4, 28, 28)
        assert outputs["mask_class_targets"].shape == (2, 4)
        # Ground truth joins the proposals, so every image has foreground ROIs with the
        # classes of its boxes, and background ROIs regress nothing.
        classes = outputs["class_targets"].numpy()
        assert set(classes[0][classes[0] > 0]) <= {2, 5}
        assert set(classes[1][classes[1] > 0]) == {9}
        np.testing.assert_array_equal(outputs["box_targets"].numpy()[classes == 0], 0.0)
        loss = (
            maskrcnn_losses.FastrcnnClassLoss()(outputs["class_outputs"], outputs["class_targets"])
            + maskrcnn_losses.FastrcnnBoxLoss(1.0)(
                outputs["box_outputs"], outputs["class_targets"], outputs["box_targets"]
            )
            + maskrcnn_losses.MaskrcnnLoss()(
                outputs["mask_outputs"], outputs["mask_targets"], outputs["mask_class_targets"]
            )
            + tf.add_n([tf.reduce_sum(score) for score in outputs["rpn_scores"].values()])
            + tf.add_n([tf.reduce_sum(box) for box in outputs["rpn_boxes"].values()])
        )
    gradients = tape.gradient(loss, model.trainable_variables)
    missing = [
        v.path for v, g in zip(model.trainable_variables, gradients, strict=True) if g is None
    ]
    assert missing == []


def test_inference_gives_detections_and_masks_and_survives_a_config_round_trip():
    model = _build(_tiny_config())
    images, image_shape, *_ = _batch()
    outputs = model(images, image_shape, training=False)
    assert outputs["detection_boxes"].shape == (2, 6, 4)
    assert outputs["detection_masks"].shape == (2, 6, 28, 28)
    masks = outputs["detection_masks"].numpy()
    assert masks.min() >= 0.0
    assert masks.max() <= 1.0
    # Boxes stay inside each image's own (unpadded) size.
    boxes = outputs["detection_boxes"].numpy()
    assert boxes[1][:, [0, 2]].max() <= 48.0
    assert boxes[1][:, [1, 3]].max() <= 56.0

    clone = MaskRCNNModel.from_config(model.get_config())
    clone.build((None, SIZE, SIZE, 3))
    clone.set_weights(model.get_weights())
    again = clone(images, image_shape, training=False)
    for key in ("detection_boxes", "detection_scores", "detection_classes", "detection_masks"):
        np.testing.assert_allclose(again[key], outputs[key], atol=1e-5)


def test_faster_rcnn_has_no_mask_outputs():
    model = _build(_tiny_config(include_mask=False))
    images, image_shape, gt_boxes, gt_classes, _ = _batch()
    training = model(images, image_shape, gt_boxes=gt_boxes, gt_classes=gt_classes, training=True)
    inference = model(images, image_shape, training=False)
    assert not {"mask_outputs", "mask_targets"} & set(training)
    assert "detection_masks" not in inference
    assert inference["detection_boxes"].shape == (2, 6, 4)


def test_cascade_stages_have_their_own_heads_outputs_and_targets():
    model = _build(_tiny_config(cascade=True))
    assert len(model.detection_heads) == 3
    assert len({id(head) for head in model.detection_heads}) == 3
    images, image_shape, gt_boxes, gt_classes, gt_masks = _batch()
    outputs = model(
        images,
        image_shape,
        gt_boxes=gt_boxes,
        gt_classes=gt_classes,
        gt_masks=gt_masks,
        training=True,
    )
    for suffix in ("", "_1", "_2"):
        assert outputs[f"class_outputs{suffix}"].shape[-1] == 10
        assert outputs[f"box_outputs{suffix}"].shape[-1] == 4  # one box for every class
        assert f"class_targets{suffix}" in outputs
    inference = model(images, image_shape, training=False)
    assert inference["detection_masks"].shape == (2, 6, 28, 28)


@pytest.mark.parametrize("cascade", [False, True], ids=["mask_rcnn", "cascade"])
def test_training_checkpoints_hold_every_weight(cascade, tmp_path):
    # Every stage's detection head and the mask head come back from `tf.train.Checkpoint`
    # (as training, evaluation and export read them) into a freshly built model.
    config = _tiny_config(cascade=cascade)
    images, *_ = _batch()
    model_checks.check_checkpoint_round_trip(_build(config), _build(config), images, tmp_path)


def test_bad_component_combinations_are_errors():
    config = _tiny_config(cascade=True)
    model = _build(config)
    parts = {
        "backbone": model.backbone,
        "decoder": model.decoder,
        "rpn_head": model.rpn_head,
        "detection_head": model.detection_heads,
        "roi_generator": model.roi_generator,
        "roi_sampler": model.roi_sampler,
        "roi_aligner": model.roi_aligner,
        "detection_generator": model.detection_generator,
    }
    with pytest.raises(ValueError, match="class_agnostic_bbox_pred"):
        MaskRCNNModel(**parts)
    with pytest.raises(ValueError, match="one head per stage"):
        MaskRCNNModel(
            **{**parts, "detection_head": model.detection_heads[:1]}, class_agnostic_bbox_pred=True
        )
    with pytest.raises(ValueError, match="mask_sampler"):
        MaskRCNNModel(**parts, class_agnostic_bbox_pred=True, mask_head=model.mask_head)
    with pytest.raises(ValueError, match="outer_boxes_scale"):
        MaskRCNNModel(**parts, class_agnostic_bbox_pred=True, outer_boxes_scale=0.5)
