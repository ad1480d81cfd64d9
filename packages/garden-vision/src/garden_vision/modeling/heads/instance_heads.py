"""Per-ROI heads of two-stage detectors (Model Garden's `heads.instance_heads`).

Faster R-CNN, Mask R-CNN and Cascade R-CNN crop a fixed-size feature patch for every
region of interest (ROI align) and run small heads on each patch:

- `DetectionHead`: `num_convs` 3x3 convolutions, then `num_fcs` fully connected layers
  (each followed by batch normalization and the activation), then class logits and box
  offsets per ROI (one box per class, or one for every class with
  `class_agnostic_bbox_pred`, as Cascade R-CNN needs).
- `MaskHead`: `num_convs` 3x3 convolutions, a transposed convolution that upsamples by
  `upsample_factor`, and a 1x1 convolution with one mask logit map per class; each ROI
  keeps the map of its class (Mask R-CNN, He et al., 2017).

Both read `[batch, num_rois, height, width, channels]` ROI features and run their
convolutions on `batch * num_rois` patches. `build_detection_head` and `build_mask_head` are
the `detection` and `mask` entries of `garden.heads`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.heads.head_settings import (
    NormActivationSettings,
    checked_ints,
    norm_activation_kwargs,
)
from garden_vision.modeling.layers.nn_layers import batch_norm


def _he_fan_out() -> keras.initializers.Initializer:
    """He initialization over the output fan (Model Garden's instance-head convolutions)."""
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def _roi_feature_shape(owner: str, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
    """`input_shape` as `[batch, num_rois, height, width, channels]` with static patch sizes.

    Raises:
      ConfigError: If the shape is not of rank 5 or its height, width or channels are unknown.
    """
    shape = tuple(input_shape)
    if len(shape) != 5 or any(dim is None for dim in shape[2:]):
        raise ConfigError(
            f"{owner} reads ROI features of shape [batch, num_rois, height, width, channels] "
            f"with known height, width and channels, got {list(shape)}"
        )
    return shape


class _RoiConvs:
    """Builds the 3x3 convolutions (and their batch normalizations) of an instance head.

    Model Garden's instance heads share this convolution: He initialization over the output
    fan for plain and separable kernels alike, zero biases, the kernel regularizer on every
    kernel (depthwise and pointwise included).
    """

    def __init__(self, head: keras.layers.Layer):
        self.head = head

    def conv(self, filters: int, kernel_size: int, name: str) -> keras.layers.Layer:
        head = self.head
        common = {
            "filters": filters,
            "kernel_size": kernel_size,
            "padding": "same" if kernel_size > 1 else "valid",
            "bias_initializer": "zeros",
            "bias_regularizer": head.bias_regularizer,
            "name": name,
            "dtype": head.dtype_policy,
        }
        if head.use_separable_conv:
            return keras.layers.SeparableConv2D(
                depthwise_initializer=_he_fan_out(),
                pointwise_initializer=_he_fan_out(),
                depthwise_regularizer=head.kernel_regularizer,
                pointwise_regularizer=head.kernel_regularizer,
                **common,
            )
        return keras.layers.Conv2D(
            kernel_initializer=_he_fan_out(),
            kernel_regularizer=head.kernel_regularizer,
            **common,
        )

    def norm(self, name: str) -> keras.layers.Layer:
        head = self.head
        return batch_norm(
            head.norm_momentum,
            head.norm_epsilon,
            head.use_sync_bn,
            name=name,
            dtype=head.dtype_policy,
        )


@keras.saving.register_keras_serializable(package="garden_vision")
class DetectionHead(NormActivationSettings, keras.layers.Layer):
    """Fast R-CNN's box head: class logits and box offsets for every ROI.

    Model Garden's `DetectionHead`. The ROI features are reshaped to `batch * num_rois`
    patches for `num_convs` x (3x3 convolution of `num_filters`, batch normalization,
    activation), flattened per ROI (rows, columns, channels), and passed through `num_fcs`
    x (dense layer of `fc_dims`, batch normalization, activation). Two dense layers then
    predict the class logits and the box offsets.

    Called on `[batch, num_rois, height, width, channels]` ROI features (height, width and
    channels known), it returns `(class_outputs, box_outputs)`:

    - `class_outputs`: `[batch, num_rois, num_classes]` logits (class 0 is background);
    - `box_outputs`: `[batch, num_rois, num_classes * 4]` box offsets, class-major (the
      offsets for class `c` are values `4c` to `4c + 3`), or `[batch, num_rois, 4]` with
      `class_agnostic_bbox_pred`.

    Outputs are float32 whatever the compute dtype. Initialization follows Model Garden:
    convolutions He-normal over the output fan, hidden dense layers
    VarianceScaling(1/3, fan_out, uniform), class logits N(0, 0.01), box offsets
    N(0, 0.001), zero biases.

    Example:

    ```python
    head = DetectionHead(num_classes=91)  # Two dense layers of 1024.
    classes, boxes = head(roi_features)  # [2, 512, 7, 7, 256] -> [2, 512, 91], [2, 512, 364]
    ```

    Args:
      num_classes: Classes per ROI, background (0) included.
      num_convs: 3x3 convolutions before the dense layers.
      num_filters: Their width.
      use_separable_conv: Depthwise-separable convolutions.
      num_fcs: Hidden dense layers before the predictions.
      fc_dims: Their width.
      class_agnostic_bbox_pred: Predict one box per ROI instead of one per class.
      activation: The activation's name (`NormActivation.activation`).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch normalization's moving statistics.
      norm_epsilon: Its variance epsilon.
      kernel_regularizer: Regularizer of the kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(
        self,
        num_classes: int,
        num_convs: int = 0,
        num_filters: int = 256,
        use_separable_conv: bool = False,
        num_fcs: int = 2,
        fc_dims: int = 1024,
        class_agnostic_bbox_pred: bool = False,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # === Settings ===
        num_classes, num_convs, num_filters, num_fcs, fc_dims = checked_ints(
            "DetectionHead",
            (
                ("num_classes", num_classes, 1),
                ("num_convs", num_convs, 0),
                ("num_filters", num_filters, 1),
                ("num_fcs", num_fcs, 0),
                ("fc_dims", fc_dims, 1),
            ),
        )
        self.num_classes = num_classes
        self.num_convs = num_convs
        self.num_filters = num_filters
        self.use_separable_conv = bool(use_separable_conv)
        self.num_fcs = num_fcs
        self.fc_dims = fc_dims
        self.class_agnostic_bbox_pred = bool(class_agnostic_bbox_pred)
        self.set_norm_activation(
            activation,
            use_sync_bn,
            norm_momentum,
            norm_epsilon,
            kernel_regularizer,
            bias_regularizer,
        )

        # === Convolutions and dense layers ===
        # Sublayers are attributes of their own (`tf.train.Checkpoint` does not see layers
        # inside Python lists); these lists hold their names.
        layers = _RoiConvs(self)
        self._conv_names = [f"conv_{i}" for i in range(num_convs)]
        self._conv_norm_names = [f"conv_norm_{i}" for i in range(num_convs)]
        for conv_name, norm_name in zip(self._conv_names, self._conv_norm_names, strict=True):
            setattr(self, conv_name, layers.conv(num_filters, 3, f"detection_{conv_name}"))
            setattr(self, norm_name, layers.norm(f"detection_{norm_name}"))
        self._fc_names = [f"fc_{i}" for i in range(num_fcs)]
        self._fc_norm_names = [f"fc_norm_{i}" for i in range(num_fcs)]
        for fc_name, norm_name in zip(self._fc_names, self._fc_norm_names, strict=True):
            setattr(
                self,
                fc_name,
                self._dense(
                    fc_dims,
                    keras.initializers.VarianceScaling(
                        scale=1.0 / 3.0, mode="fan_out", distribution="uniform"
                    ),
                    f"detection_{fc_name}",
                ),
            )
            setattr(self, norm_name, layers.norm(f"detection_{norm_name}"))

        # === Predictors ===
        self.classifier = self._dense(
            num_classes, keras.initializers.RandomNormal(stddev=0.01), "detection_scores"
        )
        num_box_outputs = 4 if self.class_agnostic_bbox_pred else 4 * num_classes
        self.box_regressor = self._dense(
            num_box_outputs, keras.initializers.RandomNormal(stddev=0.001), "detection_boxes"
        )

    def _dense(self, units: int, initializer: Any, name: str) -> keras.layers.Dense:
        return keras.layers.Dense(
            units,
            kernel_initializer=initializer,
            bias_initializer="zeros",
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            name=name,
            dtype=self.dtype_policy,
        )

    def build(self, input_shape: Sequence[int | None]) -> None:
        _, num_rois, height, width, channels = _roi_feature_shape("DetectionHead", input_shape)
        for name in self._conv_names:
            getattr(self, name).build((None, height, width, channels))
            channels = self.num_filters
        for name in self._conv_norm_names:
            getattr(self, name).build((None, height, width, channels))
        features = height * width * channels
        for fc_name, norm_name in zip(self._fc_names, self._fc_norm_names, strict=True):
            getattr(self, fc_name).build((None, num_rois, features))
            features = self.fc_dims
            getattr(self, norm_name).build((None, num_rois, features))
        self.classifier.build((None, num_rois, features))
        self.box_regressor.build((None, num_rois, features))

    def call(self, inputs: Any, training: bool | None = None) -> tuple[Any, Any]:
        """Predicts class logits and box offsets for every ROI.

        Args:
          inputs: `[batch, num_rois, height, width, channels]` ROI features.
          training: Batch normalization uses batch statistics (and updates its moving
            ones) when True.

        Returns:
          `(class_outputs, box_outputs)`, see the class docstring.
        """
        _, num_rois, height, width, channels = _roi_feature_shape("DetectionHead", inputs.shape)
        if num_rois is None:
            num_rois = ops.shape(inputs)[1]
        x = ops.reshape(inputs, (-1, height, width, channels))
        for conv_name, norm_name in zip(self._conv_names, self._conv_norm_names, strict=True):
            x = getattr(self, conv_name)(x)
            x = self._activation(getattr(self, norm_name)(x, training=training))
        x = ops.reshape(x, (-1, num_rois, height * width * x.shape[-1]))
        for fc_name, norm_name in zip(self._fc_names, self._fc_norm_names, strict=True):
            x = getattr(self, fc_name)(x)
            x = self._activation(getattr(self, norm_name)(x, training=training))
        class_outputs = ops.cast(self.classifier(x), "float32")
        box_outputs = ops.cast(self.box_regressor(x), "float32")
        return class_outputs, box_outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "use_separable_conv": self.use_separable_conv,
            "num_fcs": self.num_fcs,
            "fc_dims": self.fc_dims,
            "class_agnostic_bbox_pred": self.class_agnostic_bbox_pred,
            **self.norm_activation_config(),
        }


@keras.saving.register_keras_serializable(package="garden_vision")
class MaskHead(NormActivationSettings, keras.layers.Layer):
    """Mask R-CNN's mask head: a mask logit map per ROI, for the ROI's class.

    Model Garden's `MaskHead`. The ROI features are reshaped to `batch * num_rois` patches
    for `num_convs` x (3x3 convolution of `num_filters`, batch normalization, activation),
    upsampled by a transposed convolution (kernel and stride `upsample_factor`, then batch
    normalization and the activation) and turned into one logit map per class by a 1x1
    convolution. Each ROI keeps the map of its class (`roi_classes`); with
    `class_agnostic` the head predicts a single map shared by every class.

    Called on `(roi_features, roi_classes)`, `[batch, num_rois, height, width, channels]`
    (height, width and channels known) and `[batch, num_rois]` class ids, it returns
    `[batch, num_rois, height * upsample_factor, width * upsample_factor]` float32 mask
    logits. Class ids must lie in `[0, num_classes)`.

    Initialization follows Model Garden: every kernel He-normal over the output fan, zero
    biases.

    Example:

    ```python
    head = MaskHead(num_classes=91)
    masks = head((roi_features, roi_classes))  # [2, 128, 14, 14, 256] -> [2, 128, 28, 28]
    ```

    Args:
      num_classes: Classes, background (0) included.
      upsample_factor: Kernel size and stride of the transposed convolution (>= 1).
      num_convs: 3x3 convolutions before it.
      num_filters: Their width (and the transposed convolution's).
      use_separable_conv: Depthwise-separable convolutions (the transposed one excepted).
      activation: The activation's name (`NormActivation.activation`).
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch normalization's moving statistics.
      norm_epsilon: Its variance epsilon.
      kernel_regularizer: Regularizer of the kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      class_agnostic: Predict one mask map shared by every class.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(
        self,
        num_classes: int,
        upsample_factor: int = 2,
        num_convs: int = 4,
        num_filters: int = 256,
        use_separable_conv: bool = False,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        class_agnostic: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # === Settings ===
        num_classes, upsample_factor, num_convs, num_filters = checked_ints(
            "MaskHead",
            (
                ("num_classes", num_classes, 1),
                ("upsample_factor", upsample_factor, 1),
                ("num_convs", num_convs, 0),
                ("num_filters", num_filters, 1),
            ),
        )
        self.num_classes = num_classes
        self.upsample_factor = upsample_factor
        self.num_convs = num_convs
        self.num_filters = num_filters
        self.use_separable_conv = bool(use_separable_conv)
        self.set_norm_activation(
            activation,
            use_sync_bn,
            norm_momentum,
            norm_epsilon,
            kernel_regularizer,
            bias_regularizer,
        )
        self.class_agnostic = bool(class_agnostic)

        # === Convolutions (attributes of their own, see `DetectionHead`) ===
        layers = _RoiConvs(self)
        self._conv_names = [f"conv_{i}" for i in range(num_convs)]
        self._conv_norm_names = [f"conv_norm_{i}" for i in range(num_convs)]
        for conv_name, norm_name in zip(self._conv_names, self._conv_norm_names, strict=True):
            setattr(self, conv_name, layers.conv(num_filters, 3, f"mask_{conv_name}"))
            setattr(self, norm_name, layers.norm(f"mask_{norm_name}"))

        # === Upsampling ===
        self.deconv = keras.layers.Conv2DTranspose(
            filters=num_filters,
            kernel_size=upsample_factor,
            strides=upsample_factor,
            padding="valid",
            kernel_initializer=_he_fan_out(),
            bias_initializer="zeros",
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            name="mask_upsampling",
            dtype=self.dtype_policy,
        )
        self.deconv_norm = layers.norm("mask_deconv_norm")

        # === Mask logits ===
        self.mask_regressor = layers.conv(
            1 if self.class_agnostic else num_classes, 1, "mask_logits"
        )

    def build(self, input_shape: Sequence[Sequence[int | None]]) -> None:
        feature_shape = input_shape[0] if _is_pair(input_shape) else input_shape
        _, _, height, width, channels = _roi_feature_shape("MaskHead", feature_shape)
        for name in self._conv_names:
            getattr(self, name).build((None, height, width, channels))
            channels = self.num_filters
        for name in self._conv_norm_names:
            getattr(self, name).build((None, height, width, channels))
        self.deconv.build((None, height, width, channels))
        upsampled = (
            None,
            height * self.upsample_factor,
            width * self.upsample_factor,
            self.num_filters,
        )
        self.deconv_norm.build(upsampled)
        self.mask_regressor.build(upsampled)

    def call(self, inputs: Sequence[Any], training: bool | None = None) -> Any:
        """Predicts the mask logits of every ROI for its class.

        Args:
          inputs: `(roi_features, roi_classes)`: `[batch, num_rois, height, width,
            channels]` ROI features and `[batch, num_rois]` class ids (any numeric dtype).
          training: Batch normalization uses batch statistics (and updates its moving
            ones) when True.

        Returns:
          `[batch, num_rois, height * upsample_factor, width * upsample_factor]` logits.
        """
        if not _is_pair(inputs):
            raise ValueError(
                f"MaskHead is called on (roi_features, roi_classes), got {type(inputs).__name__}"
            )
        roi_features, roi_classes = inputs
        _, num_rois, height, width, channels = _roi_feature_shape("MaskHead", roi_features.shape)
        if num_rois is None:
            num_rois = ops.shape(roi_features)[1]
        x = ops.reshape(roi_features, (-1, height, width, channels))
        for conv_name, norm_name in zip(self._conv_names, self._conv_norm_names, strict=True):
            x = getattr(self, conv_name)(x)
            x = self._activation(getattr(self, norm_name)(x, training=training))
        x = self.deconv(x)
        x = self._activation(self.deconv_norm(x, training=training))
        logits = ops.cast(self.mask_regressor(x), "float32")

        mask_height = height * self.upsample_factor
        mask_width = width * self.upsample_factor
        if self.class_agnostic:
            return ops.reshape(logits, (-1, num_rois, mask_height, mask_width))
        logits = ops.reshape(logits, (-1, num_rois, mask_height, mask_width, self.num_classes))
        # Each ROI's map of its own class: a gather along the class axis per (image, ROI).
        return tf.gather(logits, tf.cast(roi_classes, tf.int32), axis=-1, batch_dims=2)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "upsample_factor": self.upsample_factor,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "use_separable_conv": self.use_separable_conv,
            **self.norm_activation_config(),
            "class_agnostic": self.class_agnostic,
        }


def _is_pair(value: Any) -> bool:
    """Whether `value` is a list or tuple of two items (features and classes, or shapes)."""
    return isinstance(value, (list, tuple)) and len(value) == 2 and not isinstance(value[0], int)


def _roi_input_specs(input_specs: Any) -> tuple[int | None, ...]:
    """The ROI-feature shape of a builder's `input_specs`: that shape, or a pair whose first
    item it is (the shapes of `(roi_features, roi_classes)`)."""
    specs = tuple(input_specs)
    if specs and isinstance(specs[0], (list, tuple)):
        specs = tuple(specs[0])
    return specs


def build_detection_head(
    input_specs: Sequence[int | None],
    num_classes: int,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    num_convs: int = 4,
    num_filters: int = 256,
    use_separable_conv: bool = False,
    num_fcs: int = 1,
    fc_dims: int = 1024,
    class_agnostic_bbox_pred: bool = False,
    cascade_class_ensemble: bool = False,
) -> DetectionHead:
    """Builds a `DetectionHead` (the `detection` entry of `garden.heads`).

    The settings are the fields of Model Garden's `configs.maskrcnn.DetectionHead`, with
    its defaults (4 convolutions and 1 dense layer, where the layer's own defaults are 0
    and 2). Activation and batch normalization come from `norm_activation_config`, as in
    Model Garden's Mask R-CNN factory.

    Args:
      input_specs: The shape of the ROI features, `[batch, num_rois, height, width,
        channels]`.
      num_classes: Classes per ROI, background included.
      norm_activation_config: The activation and batch normalization.
      l2_regularizer: Kernel regularizer (weight decay), or None.
      num_convs, num_filters, use_separable_conv, num_fcs, fc_dims,
        class_agnostic_bbox_pred: As in `DetectionHead`.
      cascade_class_ensemble: A field of the same config that the model reads (Cascade
        R-CNN averages the class probabilities of its heads); the head does not use it.

    Raises:
      ConfigError: If the shape is not of rank 5 with known patch sizes, or a setting is
        out of range.
    """
    del cascade_class_ensemble  # The model's setting.
    _roi_feature_shape("DetectionHead", _roi_input_specs(input_specs))
    return DetectionHead(
        num_classes=num_classes,
        num_convs=num_convs,
        num_filters=num_filters,
        use_separable_conv=use_separable_conv,
        num_fcs=num_fcs,
        fc_dims=fc_dims,
        class_agnostic_bbox_pred=class_agnostic_bbox_pred,
        **norm_activation_kwargs(norm_activation_config, l2_regularizer),
    )


def build_mask_head(
    input_specs: Sequence[int | None] | Sequence[Sequence[int | None]],
    num_classes: int,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    upsample_factor: int = 2,
    num_convs: int = 4,
    num_filters: int = 256,
    use_separable_conv: bool = False,
    class_agnostic: bool = False,
) -> MaskHead:
    """Builds a `MaskHead` (the `mask` entry of `garden.heads`).

    The settings are the fields of Model Garden's `configs.maskrcnn.MaskHead`, with its
    defaults. The activation, momentum and epsilon come from `norm_activation_config`; as in
    Model Garden's Mask R-CNN factory, which passes no `use_sync_bn` to the mask head, its
    batch normalization is not synchronized across replicas.

    Args:
      input_specs: The shape of the ROI features, `[batch, num_rois, height, width,
        channels]`, or the pair of shapes of `(roi_features, roi_classes)`.
      num_classes: Classes, background included.
      norm_activation_config: The activation and batch normalization.
      l2_regularizer: Kernel regularizer (weight decay), or None.
      upsample_factor, num_convs, num_filters, use_separable_conv, class_agnostic: As in
        `MaskHead`.

    Raises:
      ConfigError: If the shape is not of rank 5 with known patch sizes, or a setting is
        out of range.
    """
    _roi_feature_shape("MaskHead", _roi_input_specs(input_specs))
    return MaskHead(
        num_classes=num_classes,
        upsample_factor=upsample_factor,
        num_convs=num_convs,
        num_filters=num_filters,
        use_separable_conv=use_separable_conv,
        **norm_activation_kwargs(norm_activation_config, l2_regularizer, use_sync_bn=False),
        class_agnostic=class_agnostic,
    )
