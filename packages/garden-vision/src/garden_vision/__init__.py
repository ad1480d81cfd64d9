"""garden-vision: computer-vision models for Garden, on Keras 3 and TensorFlow.

Model Garden's vision work rebuilt for Keras 3: backbones (ResNet, RevNet, MobileNet,
EfficientNet, ViT, SpineNet, SpineNet-Mobile), decoders (FPN, NAS-FPN), the classification
model, RetinaNet and Faster / Mask / Cascade R-CNN, detection ops (boxes, anchors, matching,
NMS, ROIAlign), input pipelines, COCO evaluation, the built-in `garden_shapes` dataset, the
image classification, RetinaNet and Mask R-CNN tasks and their experiments, and export,
registered through entry points so `garden list` finds them.

Model Garden's import paths work with `official.vision` renamed to `garden_vision`
(`from garden_vision.modeling.backbones import ResNet`), and the package itself is a short
namespace like `tensorflow_models.vision`:

    import garden_vision as gv

    backbone = gv.backbones.ResNet(model_id=18)
    image = gv.preprocess_ops.normalize_image(image)

Every name is imported on first use: importing `garden_vision` loads neither TensorFlow nor
Keras. It builds on garden-core and never imports garden-nlp or garden-research.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports
from garden_vision.__about__ import __version__

# Short name -> where it lives (as `tensorflow_models.vision` offers them, for what Garden
# implements, plus Garden's own subpackages).
_EXPORTS = {
    # tensorflow_models.vision's names.
    "ImageClassificationTask": "garden_vision.tasks.image_classification:ImageClassificationTask",
    "MaskRCNNTask": "garden_vision.tasks.maskrcnn:MaskRCNNTask",
    "RetinaNetTask": "garden_vision.tasks.retinanet:RetinaNetTask",
    "SemanticSegmentationTask": (
        "garden_vision.tasks.semantic_segmentation:SemanticSegmentationTask"
    ),
    "anchor": "garden_vision.ops.anchor",
    "augment": "garden_vision.ops.augment",
    "box_matcher": "garden_vision.ops.box_matcher",
    "box_ops": "garden_vision.ops.box_ops",
    "backbones": "garden_vision.modeling.backbones",
    "classification_model": "garden_vision.modeling.classification_model",
    "configs": "garden_vision.configs",
    "decoders": "garden_vision.modeling.decoders",
    "factory": "garden_vision.modeling.factory",
    "heads": "garden_vision.modeling.heads",
    "image_classification": "garden_vision.tasks.image_classification",
    "iou_similarity": "garden_vision.ops.iou_similarity",
    "layers": "garden_vision.modeling.layers",
    "mask_ops": "garden_vision.ops.mask_ops",
    "maskrcnn": "garden_vision.tasks.maskrcnn",
    "maskrcnn_model": "garden_vision.modeling.maskrcnn_model",
    "models": "garden_vision.modeling.models",
    "nms": "garden_vision.ops.nms",
    "preprocess_ops": "garden_vision.ops.preprocess_ops",
    "retinanet": "garden_vision.tasks.retinanet",
    "retinanet_model": "garden_vision.modeling.retinanet_model",
    "sampling_ops": "garden_vision.ops.sampling_ops",
    "segmentation_model": "garden_vision.modeling.segmentation_model",
    "semantic_segmentation": "garden_vision.tasks.semantic_segmentation",
    "serving": "garden_vision.serving",
    "spatial_transform_ops": "garden_vision.ops.spatial_transform_ops",
    "target_gather": "garden_vision.ops.target_gather",
    # Garden's subpackages.
    "dataloaders": "garden_vision.dataloaders",
    "datasets": "garden_vision.datasets",
    "modeling": "garden_vision.modeling",
    "ops": "garden_vision.ops",
    "tasks": "garden_vision.tasks",
}

__getattr__, __dir__, _lazy_names = _lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_lazy_names]
