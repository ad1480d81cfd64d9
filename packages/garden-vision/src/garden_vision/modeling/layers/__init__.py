"""Layers shared by garden-vision's backbones and heads (Model Garden's `modeling.layers`).

- Residual blocks: `ResidualBlock`, `BottleneckBlock` (ResNet), `InvertedBottleneckBlock`
  and `Conv2DBNBlock` (MobileNet, EfficientNet), `ResidualInner`, `BottleneckResidualInner`
  and `ReversibleBlock` (RevNet).
- Transformer parts of ViT: `PatchEmbedding`, `PositionEmbedding`, `ClassToken`,
  `TransformerEncoderBlock`.
- Building blocks: `SqueezeExcitation`, `StochasticDepth`, `BatchNormalization`,
  `batch_norm`, `get_activation`, `make_divisible`.
- Resampling of multi-level networks (SpineNet, FPN, NAS-FPN): `NearestUpsampling`.
- Detection post-processing: `MultilevelDetectionGenerator` (decoding and NMS) and, for
  two-stage detectors, `DetectionGenerator` (class-specific boxes).
- Two-stage detection: `MultilevelROIGenerator` (proposals), `ROISampler` and `BoxSampler`
  (training ROIs), `MultilevelROIAligner` (ROIAlign), `MaskSampler` (mask targets).

Names are imported on first use, so importing this package loads no TensorFlow.
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "BatchNormalization": ".nn_layers:BatchNormalization",
        "BottleneckBlock": ".resnet_blocks:BottleneckBlock",
        "BottleneckResidualInner": ".reversible_blocks:BottleneckResidualInner",
        "BoxSampler": ".box_sampler:BoxSampler",
        "ClassToken": ".transformer_layers:ClassToken",
        "Conv2DBNBlock": ".mobile_blocks:Conv2DBNBlock",
        "DetectionGenerator": ".detection_generator:DetectionGenerator",
        "InvertedBottleneckBlock": ".mobile_blocks:InvertedBottleneckBlock",
        "MaskSampler": ".mask_sampler:MaskSampler",
        "MultilevelROIAligner": ".roi_aligner:MultilevelROIAligner",
        "MultilevelROIGenerator": ".roi_generator:MultilevelROIGenerator",
        "MultilevelDetectionGenerator": ".detection_generator:MultilevelDetectionGenerator",
        "NearestUpsampling": ".resampling:NearestUpsampling",
        "PatchEmbedding": ".transformer_layers:PatchEmbedding",
        "PositionEmbedding": ".transformer_layers:PositionEmbedding",
        "ROISampler": ".roi_sampler:ROISampler",
        "ResidualBlock": ".resnet_blocks:ResidualBlock",
        "ResidualInner": ".reversible_blocks:ResidualInner",
        "ReversibleBlock": ".reversible_blocks:ReversibleBlock",
        "SqueezeExcitation": ".nn_layers:SqueezeExcitation",
        "SpatialPyramidPooling": ".deeplab:SpatialPyramidPooling",
        "StochasticDepth": ".nn_layers:StochasticDepth",
        "TransformerEncoderBlock": ".transformer_layers:TransformerEncoderBlock",
        "batch_norm": ".nn_layers:batch_norm",
        "build_roi_samplers": ".roi_sampler:build_roi_samplers",
        "get_activation": ".nn_layers:get_activation",
        "make_divisible": ".nn_layers:make_divisible",
    },
)
