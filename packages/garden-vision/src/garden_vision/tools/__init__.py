"""Command-line tools of garden-vision: preparing data for its tasks and using its models.

* `garden_vision.tools.images_to_tfrecords` (also installed as the command
  `garden-images-to-tfrecords`) writes a folder of labelled images, one sub-folder per class,
  into sharded TFRecords of Model Garden's image-classification tf.Examples.
* `garden_vision.tools.coco_to_tfrecords` (`garden-coco-to-tfrecords`) writes a COCO
  annotation file and its images into sharded TFRecords of Model Garden's detection
  tf.Examples.
* `garden_vision.tools.detect` (`garden-detect`) runs an exported detector on image files,
  prints the detections and draws their boxes.
"""
