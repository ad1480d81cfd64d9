"""Command-line tools of garden-vision that prepare data for its tasks.

* `garden_vision.tools.images_to_tfrecords` (also installed as the command
  `garden-images-to-tfrecords`) writes a folder of labelled images, one sub-folder per class,
  into sharded TFRecords of Model Garden's image-classification tf.Examples.
"""
