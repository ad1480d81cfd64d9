"""Input pipelines: record decoders and parsers that turn decoded records into model inputs.

- `classification_input`: tf.Example / TFDS decoders and the image-classification `Parser`
  (Model Garden's `official.vision.dataloaders.classification_input`).
- `tf_example_decoder`, `tf_example_label_map_decoder`, `tfds_detection_decoders`: detection
  records (tf.Example with class ids or class names, TFDS COCO) to one decoded dict.
- `retinanet_input`: the RetinaNet `Parser` (anchor labels, `image_info`, evaluation
  ground truth); `maskrcnn_input`: the Mask R-CNN `Parser` (RPN targets, ground-truth
  boxes, classes and cropped masks); `utils`: `process_source_id`, `pad_groundtruths_to_fixed_size`.
- `segmentation_input`: the semantic segmentation `Decoder` (image and PNG class mask) and
  `Parser` (resize, crop, scale jitter and flip with the mask; `valid_masks`, `image_info`);
  `tfds_segmentation_decoders`: TFDS segmentation datasets (Cityscapes, Oxford-IIIT Pet,
  `garden_shapes`) to the same dict.

Submodules are imported on first use (`garden_vision.dataloaders.classification_input`); the
detection decoders are also offered here (`garden_vision.dataloaders.TfExampleDecoder`).
"""

from garden_core.lazy_exports import lazy_exports as _lazy_exports

__getattr__, __dir__, __all__ = _lazy_exports(
    __name__,
    {
        "CityScapesDecoder": ".tfds_segmentation_decoders:CityScapesDecoder",
        "GardenShapesSegmentationDecoder": (
            ".tfds_segmentation_decoders:GardenShapesSegmentationDecoder"
        ),
        "MSCOCODecoder": ".tfds_detection_decoders:MSCOCODecoder",
        "OxfordIIITPetDecoder": ".tfds_segmentation_decoders:OxfordIIITPetDecoder",
        "SEGMENTATION_TFDS_ID_TO_DECODER_MAP": (
            ".tfds_segmentation_decoders:TFDS_ID_TO_DECODER_MAP"
        ),
        "TFDS_ID_TO_DECODER_MAP": ".tfds_detection_decoders:TFDS_ID_TO_DECODER_MAP",
        "TfExampleDecoder": ".tf_example_decoder:TfExampleDecoder",
        "TfExampleDecoderLabelMap": ".tf_example_label_map_decoder:TfExampleDecoderLabelMap",
    },
)
