"""`MaskRCNNTask` end to end through the CLI: Mask R-CNN trains and evaluates with COCO box
and mask metrics, exports with `detection_masks` and serves them (also drawn by
`garden-detect`); Faster R-CNN (no masks) and bad configs.

The data are tiny TFRecords in Model Garden's detection layout with PNG instance masks, which
the tests write (`detection_data.box_images`: bright rectangles on dark noise, one colour per
class; each mask is its rectangle).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from detection_data import box_images, encode_image, serve_three_ways, write_detection_tfrecords

from garden_core import cli, experiment_factory, task_factory
from garden_core.config import ConfigError

SIZE = 64
NUM_CLASSES = 4  # Background and three object classes.
MASK_METRICS = ("mask_AP", "mask_AP50", "mask_AP75", "mask_ARmax100")


def tiny_overrides(train: str, validation: str, steps: int = 120) -> dict:
    data = {"global_batch_size": 8, "dtype": "float32"}
    return {
        "task": {
            "model": {
                "num_classes": NUM_CLASSES,
                "input_size": [SIZE, SIZE, 3],
                "min_level": 2,
                "max_level": 5,
                "anchor": {"num_scales": 1, "aspect_ratios": [0.5, 1.0, 2.0], "anchor_size": 3.0},
                "backbone": {
                    "type": "resnet",
                    "resnet": {"model_id": 10, "depth_multiplier": 0.25},
                },
                "decoder": {"type": "fpn", "fpn": {"num_filters": 32}},
                "rpn_head": {"num_filters": 32},
                "detection_head": {"num_convs": 0, "num_fcs": 1, "fc_dims": 64},
                "roi_generator": {
                    "pre_nms_top_k": 200,
                    "num_proposals": 32,
                    "test_pre_nms_top_k": 200,
                    "test_num_proposals": 32,
                },
                "roi_sampler": {"num_sampled_rois": 32},
                "detection_generator": {"max_num_detections": 10, "pre_nms_score_threshold": 0.0},
                "mask_head": {"num_convs": 1, "num_filters": 16},
                "mask_sampler": {"num_sampled_masks": 8},
                "norm_activation": {"norm_momentum": 0.9, "use_sync_bn": False},
            },
            "train_data": {
                **data,
                "input_path": train,
                "is_training": True,
                "shuffle_buffer_size": 64,
                "seed": 1,
                "parser": {"aug_rand_hflip": True, "max_num_instances": 4, "mask_crop_size": 28},
            },
            "validation_data": {
                **data,
                "input_path": validation,
                "is_training": False,
                "drop_remainder": False,
                "parser": {"max_num_instances": 4, "mask_crop_size": 28},
            },
            "losses": {"l2_weight_decay": 1e-4},
            "annotation_file": "",
            "init_checkpoint": "",
        },
        "trainer": {
            "train_steps": steps,
            "steps_per_loop": steps // 2,
            "summary_interval": steps // 2,
            "checkpoint_interval": steps,
            "validation_interval": steps,
            "validation_steps": -1,
            "optimizer_config": {
                "optimizer": {"type": "adam"},
                "learning_rate": {"type": "constant", "constant": {"learning_rate": 0.003}},
            },
        },
        "runtime": {"distribution_strategy": "one_device", "num_gpus": 0, "seed": 1},
    }


def experiment(overrides: dict, name: str = "maskrcnn_resnetfpn_coco"):
    params = experiment_factory.get_experiment_config(name)
    params.override(overrides)
    params.validate()
    return params


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("masks")
    kwargs = {
        "height": SIZE,
        "width": SIZE,
        "max_boxes": 2,
        "num_classes": NUM_CLASSES,
        "with_masks": True,
    }
    train = write_detection_tfrecords(root / "train.tfrecord", box_images(96, seed=0, **kwargs))
    validation = write_detection_tfrecords(
        root / "valid.tfrecord", box_images(16, seed=1, **kwargs)
    )
    return train, validation


def _run(params, root, name) -> list[dict]:
    config_file = root / "params.yaml"
    config_file.write_text(params.as_yaml())
    model_dir = str(root / "model")
    status = cli.main(
        ["train", "--experiment", name, "--config_file", str(config_file)]
        + ["--mode", "train_and_eval", "--model_dir", model_dir]
    )
    assert status == 0
    with open(f"{model_dir}/metrics.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def trained(data_files, tmp_path_factory):
    """Mask R-CNN trained and evaluated by `garden train`: (params, root, metric records)."""
    params = experiment(tiny_overrides(*data_files))
    root = tmp_path_factory.mktemp("run")
    return params, root, _run(params, root, "maskrcnn_resnetfpn_coco")


def test_mask_rcnn_trains_and_reports_box_and_mask_coco_metrics(trained):
    _, _, records = trained
    train = [r["metrics"] for r in records if r["mode"] == "train"]
    assert len(train) == 2
    for name in ("rpn_score_loss", "rpn_box_loss", "frcnn_cls_loss", "frcnn_box_loss"):
        assert np.isfinite(train[-1][name])
    assert train[-1]["mask_loss"] > 0.0
    assert train[-1]["total_loss"] < train[0]["total_loss"]
    evaluation = [r["metrics"] for r in records if r["mode"] == "eval"][-1]
    for name in ("AP", "AP50", "ARmax100", *MASK_METRICS):
        assert name in evaluation
        assert evaluation[name] is not None
    # Evaluation computes no loss (no ROIs are sampled against the ground truth), so none
    # is reported.
    assert "validation_loss" not in evaluation


def test_faster_rcnn_trains_without_masks(data_files, tmp_path):
    overrides = tiny_overrides(*data_files, steps=4)
    model = overrides["task"]["model"]
    model["include_mask"] = False
    for key in ("mask_head", "mask_sampler"):
        del model[key]
    params = experiment(overrides, "fasterrcnn_resnetfpn_coco")
    records = _run(params, tmp_path, "fasterrcnn_resnetfpn_coco")
    train = [r["metrics"] for r in records if r["mode"] == "train"][-1]
    assert train["mask_loss"] == 0.0
    evaluation = [r["metrics"] for r in records if r["mode"] == "eval"][-1]
    assert "AP" in evaluation
    assert not set(MASK_METRICS) & set(evaluation)


def test_bad_configs_name_the_field(data_files):
    overrides = tiny_overrides(*data_files)
    overrides["task"]["model"]["input_size"] = [60, 60, 3]
    with pytest.raises(ConfigError, match="input_size"):
        task_factory.get_task(experiment(overrides).task)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    params, root, _ = trained
    export_dir = str(tmp_path_factory.mktemp("export") / "segmenter")
    status = cli.main(
        ["export", "--experiment", "maskrcnn_resnetfpn_coco"]
        + ["--config_file", str(root / "params.yaml"), "--checkpoint_path", str(root / "model")]
        + ["--export_dir", export_dir, "--input_type", "image_tensor,image_bytes,tf_example"]
    )
    assert status == 0
    return params, str(root / "model"), export_dir


def test_export_serves_masks_from_images_bytes_and_examples_like_the_model(exported):
    params, model_dir, export_dir = exported
    samples = box_images(
        3, height=48, width=80, max_boxes=2, num_classes=NUM_CLASSES, seed=7, with_masks=True
    )
    images = np.stack([s.image for s in samples])
    from_tensors, from_bytes, from_examples = serve_three_ways(export_dir, samples)
    assert set(from_tensors) == {
        "detection_boxes",
        "detection_scores",
        "detection_classes",
        "num_detections",
        "detection_masks",
        "image_info",
    }
    # max_num_detections 10, masks of mask_head's 28x28 (Model Garden's default), in [0, 1].
    masks = from_tensors["detection_masks"].numpy()
    assert masks.shape == (3, 10, 28, 28)
    assert masks.min() >= 0.0
    assert masks.max() <= 1.0
    for outputs in (from_bytes, from_examples):
        for key in ("detection_boxes", "detection_scores", "detection_masks"):
            np.testing.assert_allclose(outputs[key], from_tensors[key], atol=1e-4)

    # The served masks are the checkpoint's on the same preprocessed image.
    model = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(model=model).read(tf.train.latest_checkpoint(model_dir)).expect_partial()
    from garden_vision.ops import preprocess_ops

    image = preprocess_ops.normalize_image(tf.cast(images[0], tf.float32))
    image, info = preprocess_ops.resize_and_crop_image(image, [SIZE, SIZE], [SIZE, SIZE])
    direct = model(image[tf.newaxis], image_shape=info[tf.newaxis, 1], training=False)
    count = int(direct["num_detections"][0])
    assert count == int(from_tensors["num_detections"][0]) > 0
    np.testing.assert_allclose(
        from_tensors["detection_masks"][0, :count], direct["detection_masks"][0, :count], atol=1e-4
    )


def test_detect_command_draws_the_masks(exported, tmp_path, capsys):
    _, _, export_dir = exported
    (sample,) = box_images(
        1, height=SIZE, width=SIZE, max_boxes=2, num_classes=NUM_CLASSES, seed=7, with_masks=True
    )
    assert len(sample.boxes) == 2
    image_file = tmp_path / "scene.png"
    image_file.write_bytes(encode_image(sample.image, "png"))
    from garden_vision.tools import detect

    status = detect.main(
        ["--saved_model_dir", export_dir, "--image", str(image_file), "--min_score", "0"]
        + ["--output_dir", str(tmp_path / "drawn")]
    )
    assert status == 0
    assert "detections with score >= 0" in capsys.readouterr().out
    drawn = tf.io.decode_png((tmp_path / "drawn" / "scene.png").read_bytes()).numpy()
    # Inside the boxes the masks tint whole areas (not only the two-pixel outlines).
    function, kind = detect._signature(export_dir)
    _, found = detect.detect(function, kind, image_file.read_bytes())
    assert found["masks"].shape == (len(found["boxes"]), SIZE, SIZE)
    changed = np.any(drawn != sample.image, axis=-1)
    assert changed.sum() > found["masks"].any(axis=0).sum() * 0.5
    assert found["masks"].any(axis=0).sum() > 0


def test_tflite_input_is_not_offered_for_two_stage_detectors(trained, tmp_path, capsys):
    params, root, _ = trained
    status = cli.main(
        ["export", "--experiment", "maskrcnn_resnetfpn_coco"]
        + ["--config_file", str(root / "params.yaml"), "--checkpoint_path", str(root / "model")]
        + ["--export_dir", str(tmp_path / "lite"), "--input_type", "tflite"]
    )
    assert status != 0
    assert "tflite" in capsys.readouterr().err
    assert not (tmp_path / "lite").exists()
