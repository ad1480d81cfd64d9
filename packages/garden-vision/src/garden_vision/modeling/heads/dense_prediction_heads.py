"""Dense prediction heads: `RetinaNetHead`, `RPNHead` (Model Garden's `dense_prediction_heads`).

A dense head predicts, at every position of every feature level, one set of values per
anchor. RetinaNet's (Lin et al., 2017) has two towers of `num_convs` 3x3 convolutions,
each followed by batch normalization and the activation: the class tower ends in a 3x3
convolution with `num_anchors * num_classes` logits, the box tower in one with
`num_anchors * 4` box offsets. The convolutions are shared by every level (by default)
while each level keeps its own batch normalization, as Model Garden does. The class
logits' bias starts at `-log((1 - 0.01) / 0.01)`, so every anchor starts with a 1 %
foreground probability (the paper's prior, which keeps the focal loss stable at first).

Attribute heads add more predictions per anchor (`attribute_heads`, Model Garden's
AttributeHead configs: a name, `regression` or `classification`, a size, and an optional
`prediction_tower_name` under which several attributes share one tower).

The region proposal network of Faster R-CNN (Ren et al., 2015) is a lighter dense head:
one tower of `num_convs` 3x3 convolutions (shared by every level, per-level batch
normalization), then two 1x1 convolutions, one objectness logit and four box offsets per
anchor.

`build_retinanet_head` is the `retinanet` entry of `garden.heads`, `build_rpn_head` the
`rpn` entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import ops

from garden_core.config import ConfigError
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.heads.head_settings import (
    NormActivationSettings,
    checked_ints,
    norm_activation_kwargs,
)
from garden_vision.modeling.layers.nn_layers import batch_norm

#: The class logits' initial bias: sigmoid(bias) is the prior foreground probability 0.01.
PRIOR_PROBABILITY = 0.01
_ATTRIBUTE_TYPES = ("regression", "classification")


def _prior_bias() -> keras.initializers.Initializer:
    return keras.initializers.Constant(-math.log((1.0 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))


class _PredictionTower(NormActivationSettings, keras.layers.Layer):
    """`num_convs` x (3x3 convolution, per-level batch normalization, activation).

    The convolutions are shared by every level (`share_level_convs`) or each level has its
    own; batch normalization is always per level. Called as `tower(x, level_index)`, where
    `level_index` counts from the head's `min_level`.

    Args:
      num_levels: How many feature levels use the tower.
      num_convs: Convolutions in the tower (0 passes the features through).
      num_filters: Their width.
      share_level_convs: One set of convolutions for every level.
      use_separable_conv: Depthwise-separable convolutions (their kernels keep Keras'
        default initializers and, as in Model Garden, get no kernel regularizer).
      activation: The activation's name (`NormActivation.activation`).
      use_sync_bn, norm_momentum, norm_epsilon: The batch normalization.
      kernel_regularizer, bias_regularizer: Regularizers of the convolutions.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(
        self,
        num_levels: int,
        num_convs: int,
        num_filters: int,
        share_level_convs: bool = True,
        use_separable_conv: bool = False,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_levels = int(num_levels)
        self.num_convs = int(num_convs)
        self.num_filters = int(num_filters)
        self.share_level_convs = bool(share_level_convs)
        self.use_separable_conv = bool(use_separable_conv)
        self.set_norm_activation(
            activation,
            use_sync_bn,
            norm_momentum,
            norm_epsilon,
            kernel_regularizer,
            bias_regularizer,
        )

        # Sublayers are attributes of their own (`tf.train.Checkpoint` does not see layers
        # inside Python lists); these lists hold their names. Conv set s (one per level, or
        # one shared) is `conv_{s}_{i}`, the i-th norm of level index l is `norm_{l}_{i}`.
        conv_sets = 1 if self.share_level_convs else self.num_levels
        self._conv_names = [f"conv_{s}_{i}" for s in range(conv_sets) for i in range(num_convs)]
        self._norm_names = [
            f"norm_{level}_{i}" for level in range(self.num_levels) for i in range(num_convs)
        ]
        for name in self._conv_names:
            setattr(self, name, self._conv(name))
        for name in self._norm_names:
            setattr(
                self,
                name,
                batch_norm(
                    norm_momentum,
                    norm_epsilon,
                    self.use_sync_bn,
                    name=name,
                    dtype=self.dtype_policy,
                ),
            )

    def _conv(self, name: str) -> keras.layers.Layer:
        common = {
            "filters": self.num_filters,
            "kernel_size": 3,
            "padding": "same",
            "bias_initializer": "zeros",
            "bias_regularizer": self.bias_regularizer,
            "name": name,
            "dtype": self.dtype_policy,
        }
        if self.use_separable_conv:
            return keras.layers.SeparableConv2D(**common)
        return keras.layers.Conv2D(
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            kernel_regularizer=self.kernel_regularizer,
            **common,
        )

    def build(self, input_shape: Sequence[int | None]) -> None:
        in_shape = tuple(input_shape)
        out_shape = (*in_shape[:-1], self.num_filters)
        for index, name in enumerate(self._conv_names):
            # The first convolution of a set reads the features, the others its output.
            getattr(self, name).build(in_shape if index % self.num_convs == 0 else out_shape)
        for name in self._norm_names:
            getattr(self, name).build(out_shape)

    def call(self, inputs: Any, level_index: int = 0, training: bool | None = None) -> Any:
        x = inputs
        conv_set = 0 if self.share_level_convs else level_index
        for i in range(self.num_convs):
            x = getattr(self, self._conv_names[conv_set * self.num_convs + i])(x)
            norm = getattr(self, self._norm_names[level_index * self.num_convs + i])
            x = self._activation(norm(x, training=training))
        return x

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = tuple(input_shape)
        return shape if not self.num_convs else (*shape[:-1], self.num_filters)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_levels": self.num_levels,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "share_level_convs": self.share_level_convs,
            "use_separable_conv": self.use_separable_conv,
            **self.norm_activation_config(),
        }


def _anchors_by_level(num_anchors_per_location: Any, levels: Sequence[int]) -> dict[str, int]:
    """`num_anchors_per_location` (an int, or level -> int) as level -> int for `levels`."""
    if isinstance(num_anchors_per_location, Mapping):
        counts = {str(key): value for key, value in num_anchors_per_location.items()}
        missing = [str(level) for level in levels if str(level) not in counts]
        if missing:
            raise ConfigError(
                f"RetinaNetHead `num_anchors_per_location` has no count for levels {missing}"
            )
        counts = {str(level): counts[str(level)] for level in levels}
    else:
        counts = {str(level): num_anchors_per_location for level in levels}
    for level, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(
                f"RetinaNetHead `num_anchors_per_location` is {count!r} at level {level}: "
                "must be an int >= 1"
            )
    return counts


def _attribute_head(head: Any, index: int) -> dict[str, Any]:
    """An attribute-head config (or dict) as a checked dict with every key."""
    if hasattr(head, "as_dict"):
        head = head.as_dict()
    if not isinstance(head, Mapping):
        raise ConfigError(
            f"RetinaNetHead `attribute_heads[{index}]` is {head!r}: expected a mapping with "
            "name, type, size (and optionally prediction_tower_name, num_convs, num_filters)"
        )
    known = {"name", "type", "size", "prediction_tower_name", "num_convs", "num_filters"}
    unknown = sorted(set(head) - known)
    if unknown:
        raise ConfigError(
            f"RetinaNetHead `attribute_heads[{index}]` has unknown keys {unknown}; "
            f"known: {sorted(known)}"
        )
    checked = {
        "name": head.get("name", ""),
        "type": head.get("type", "regression"),
        "size": head.get("size", 1),
        "prediction_tower_name": head.get("prediction_tower_name") or "",
        "num_convs": head.get("num_convs"),
        "num_filters": head.get("num_filters"),
    }
    where = f"RetinaNetHead `attribute_heads[{index}]`"
    if not checked["name"] or "/" in checked["name"]:
        raise ConfigError(f"{where}.name is {checked['name']!r}: give a name without '/'")
    if checked["type"] not in _ATTRIBUTE_TYPES:
        raise ConfigError(
            f"{where}.type is {checked['type']!r}: expected one of {', '.join(_ATTRIBUTE_TYPES)}"
        )
    if int(checked["size"]) < 1:
        raise ConfigError(f"{where}.size is {checked['size']!r}: must be >= 1")
    for key in ("num_convs", "num_filters"):
        if checked[key] is not None and int(checked[key]) < 0:
            raise ConfigError(f"{where}.{key} is {checked[key]!r}: must be >= 0 (or None)")
    return checked


def _level_feature_shape(
    levels: Sequence[str], input_shape: Any, owner: str = "RetinaNetHead"
) -> tuple[int | None, ...]:
    """The one per-level feature shape of `input_shape` (level -> shape) over `levels`.

    Args:
      levels: The levels the head reads, as strings.
      input_shape: Level -> feature shape.
      owner: The head's name, for messages.

    Raises:
      ConfigError: If `input_shape` is not a dict, misses a level, or its levels differ in
        width or are not of rank 4.
    """
    if not isinstance(input_shape, Mapping):
        raise ConfigError(
            f"{owner} reads a dict of features keyed by level ('3', '4', ...), got {input_shape!r}"
        )
    shapes = {str(key): tuple(shape) for key, shape in input_shape.items()}
    missing = [level for level in levels if level not in shapes]
    if missing:
        raise ConfigError(
            f"{owner} needs feature levels {list(levels)}; levels {missing} are missing "
            f"from the features (they have {sorted(shapes)})"
        )
    for level in levels:
        if len(shapes[level]) != 4:
            raise ConfigError(
                f"{owner}: the level-{level} features have shape {list(shapes[level])}; "
                "expected [batch, height, width, channels]"
            )
    channels = {level: shapes[level][-1] for level in levels}
    if len(set(channels.values())) > 1:
        raise ConfigError(f"{owner} needs features of one width at every level, got {channels}")
    return shapes[levels[0]]


def _level_input_specs(
    input_specs: Mapping[str, Sequence[int | None]] | Sequence[Sequence[int | None]],
    levels: Sequence[str],
    head: str,
) -> dict[str, tuple[int | None, ...]]:
    """A builder's `input_specs` (level -> shape, or shapes in level order) as level -> shape.

    Raises:
      ConfigError: If a sequence does not hold one rank-4 shape per level.
    """
    if isinstance(input_specs, Mapping):
        return {str(key): tuple(value) for key, value in input_specs.items()}
    specs = [tuple(spec) for spec in input_specs]
    if len(specs) != len(levels) or not all(len(spec) == 4 for spec in specs):
        raise ConfigError(
            f"the {head} head reads levels {list(levels)}: give their feature shapes (a dict "
            f"level -> shape, or {len(levels)} rank-4 shapes in level order), got {specs}"
        )
    return dict(zip(levels, specs, strict=True))


@keras.saving.register_keras_serializable(package="garden_vision")
class RetinaNetHead(NormActivationSettings, keras.layers.Layer):
    """RetinaNet's class and box subnets over feature levels `min_level` to `max_level`.

    Called on the decoder's features, `{str(level): [batch, height_l, width_l, channels]}`
    (every level the same width), it returns `(scores, boxes, attributes)`:

    - `scores[str(level)]`: `[batch, height_l, width_l, num_anchors * num_classes]` logits,
      anchor-major (the logits of anchor `a` are channels `a * num_classes` to
      `(a + 1) * num_classes - 1`); class 0 is background;
    - `boxes[str(level)]`: `[batch, height_l, width_l, num_anchors * num_params_per_anchor]`
      box offsets (`[dy, dx, dh, dw]` per anchor, see `ops.box_ops.encode_boxes`);
    - `attributes[name][str(level)]`: `[batch, height_l, width_l, num_anchors * size]`
      per attribute head (an empty dict without attribute heads).

    Outputs are float32 whatever the compute dtype, for stable losses and box decoding.

    Initialization follows Model Garden (and the paper): tower kernels N(0, 0.01), predictor
    kernels N(0, 1e-5) (separable predictors N(0, 0.03)), zero biases except the class
    logits' (and classification attributes'), which start at the 1 % foreground prior.

    Example:

    ```python
    head = RetinaNetHead(min_level=3, max_level=7, num_classes=91,
                         num_anchors_per_location=9)
    scores, boxes, _ = head(fpn_features)  # scores["3"]: (batch, H3, W3, 9 * 91)
    ```

    Args:
      min_level: The lowest feature level.
      max_level: The highest feature level.
      num_classes: Classes predicted per anchor, background (0) included.
      num_anchors_per_location: Anchors per position: an int for every level, or a dict
        level -> int (different counts need `share_level_convs=False`).
      num_convs: Convolutions in each tower.
      num_filters: Their width.
      attribute_heads: Extra per-anchor predictions: dicts (or `AttributeHead` configs)
        with `name`, `type` (`regression` or `classification`), `size`, and optionally
        `prediction_tower_name` (attributes naming the same tower share it; its
        `num_convs` / `num_filters` come from the first of them, else the head's).
      use_separable_conv: Depthwise-separable convolutions (mobile RetinaNet).
      activation: The towers' activation.
      use_sync_bn: Synchronize batch statistics across replicas.
      norm_momentum: Momentum of the batch normalization's moving statistics.
      norm_epsilon: Its variance epsilon.
      kernel_regularizer: Regularizer of the kernels (weight decay), or None.
      bias_regularizer: Regularizer of the biases, or None.
      num_params_per_anchor: Box values per anchor (4 for axis-aligned boxes).
      share_classification_heads: Classification attributes read the class tower's
        output instead of a tower of their own (no `prediction_tower_name` then).
      share_level_convs: One set of tower convolutions and predictors for every level
        (Model Garden's default); False gives each level its own. Batch normalization is
        per level either way.
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    def __init__(
        self,
        min_level: int,
        max_level: int,
        num_classes: int,
        num_anchors_per_location: int | Mapping[str, int],
        num_convs: int = 4,
        num_filters: int = 256,
        attribute_heads: Sequence[Mapping[str, Any]] | None = None,
        use_separable_conv: bool = False,
        activation: str = "relu",
        use_sync_bn: bool = False,
        norm_momentum: float = 0.99,
        norm_epsilon: float = 0.001,
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        num_params_per_anchor: int = 4,
        share_classification_heads: bool = False,
        share_level_convs: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        # === Settings ===
        if int(min_level) > int(max_level):
            raise ConfigError(
                f"RetinaNetHead `min_level` {min_level} is above `max_level` {max_level}"
            )
        for name, value, low in (
            ("num_classes", num_classes, 1),
            ("num_convs", num_convs, 0),
            ("num_filters", num_filters, 1),
            ("num_params_per_anchor", num_params_per_anchor, 1),
        ):
            if int(value) < low:
                raise ConfigError(f"RetinaNetHead `{name}` is {value!r}: must be >= {low}")
        self.min_level = int(min_level)
        self.max_level = int(max_level)
        self.num_classes = int(num_classes)
        self.num_anchors_per_location = (
            dict(num_anchors_per_location)
            if isinstance(num_anchors_per_location, Mapping)
            else num_anchors_per_location
        )
        self.num_convs = int(num_convs)
        self.num_filters = int(num_filters)
        self.use_separable_conv = bool(use_separable_conv)
        self.set_norm_activation(
            activation,
            use_sync_bn,
            norm_momentum,
            norm_epsilon,
            kernel_regularizer,
            bias_regularizer,
        )
        self.num_params_per_anchor = int(num_params_per_anchor)
        self.share_classification_heads = bool(share_classification_heads)
        self.share_level_convs = bool(share_level_convs)
        self.attribute_heads = [
            _attribute_head(head, index) for index, head in enumerate(attribute_heads or [])
        ]

        levels = list(range(self.min_level, self.max_level + 1))
        self._anchors = _anchors_by_level(self.num_anchors_per_location, levels)
        distinct_counts = len(set(self._anchors.values())) > 1
        if distinct_counts and self.share_level_convs:
            raise ConfigError(
                f"RetinaNetHead: per-level anchor counts {self._anchors} differ, which needs "
                "`share_level_convs=False` (one shared predictor has one width)"
            )
        names = [head["name"] for head in self.attribute_heads]
        if len(set(names)) != len(names):
            raise ConfigError(f"RetinaNetHead `attribute_heads` repeat a name: {names}")
        if self.attribute_heads and distinct_counts:
            raise ConfigError(
                "RetinaNetHead: attribute heads need the same anchor count at every level, "
                f"got {self._anchors}"
            )
        for head in self.attribute_heads:
            if head["prediction_tower_name"] and self.share_classification_heads:
                raise ConfigError(
                    f"RetinaNetHead attribute {head['name']!r}: `prediction_tower_name` cannot "
                    "be set with `share_classification_heads=True`"
                )

        # === Towers ===
        tower_settings = {
            "num_levels": len(levels),
            "use_separable_conv": self.use_separable_conv,
            "activation": activation,
            "use_sync_bn": self.use_sync_bn,
            "norm_momentum": norm_momentum,
            "norm_epsilon": norm_epsilon,
            "kernel_regularizer": self.kernel_regularizer,
            "bias_regularizer": self.bias_regularizer,
            "dtype": self.dtype_policy,
        }
        self.classnet = _PredictionTower(
            num_convs=self.num_convs,
            num_filters=self.num_filters,
            share_level_convs=self.share_level_convs,
            name="classnet",
            **tower_settings,
        )
        self.boxnet = _PredictionTower(
            num_convs=self.num_convs,
            num_filters=self.num_filters,
            share_level_convs=self.share_level_convs,
            name="boxnet",
            **tower_settings,
        )

        # === Predictors ===
        # Attributes of their own (see `_PredictionTower`); one per level unless shared.
        predictor_levels = [None] if self.share_level_convs else levels
        self._classifier_names = []
        self._box_regressor_names = []
        for level in predictor_levels:
            suffix = "" if level is None else f"_{level}"
            anchors = self._anchors[str(level if level is not None else self.min_level)]
            self._classifier_names.append(f"scores{suffix}")
            setattr(
                self,
                f"scores{suffix}",
                self._predictor(anchors * self.num_classes, f"scores{suffix}", _prior_bias()),
            )
            self._box_regressor_names.append(f"boxes{suffix}")
            setattr(
                self,
                f"boxes{suffix}",
                self._predictor(anchors * self.num_params_per_anchor, f"boxes{suffix}", "zeros"),
            )

        # === Attribute heads ===
        # Per attribute: (its tower's attribute name, or None for the class tower; its
        # predictor's attribute name). Towers are shared by every level.
        self._attribute_layers: list[tuple[str | None, str]] = []
        towers: dict[str, str] = {}
        anchors = self._anchors[str(self.min_level)]
        for index, head in enumerate(self.attribute_heads):
            if self.share_classification_heads and head["type"] == "classification":
                tower = None
            else:
                key = head["prediction_tower_name"] or head["name"]
                if key not in towers:
                    towers[key] = f"attribute_tower_{len(towers)}"
                    setattr(
                        self,
                        towers[key],
                        _PredictionTower(
                            num_convs=(
                                self.num_convs if head["num_convs"] is None else head["num_convs"]
                            ),
                            num_filters=head["num_filters"] or self.num_filters,
                            share_level_convs=True,
                            name=f"{key}_net",
                            **tower_settings,
                        ),
                    )
                tower = towers[key]
            predictor = f"attribute_predictor_{index}"
            bias = _prior_bias() if head["type"] == "classification" else "zeros"
            setattr(
                self,
                predictor,
                self._predictor(
                    int(head["size"]) * anchors,
                    f"{head['name']}_attributes",
                    bias,
                    attribute=True,
                ),
            )
            self._attribute_layers.append((tower, predictor))

    def _predictor(
        self, filters: int, name: str, bias_initializer: Any, attribute: bool = False
    ) -> keras.layers.Layer:
        """A 3x3 prediction convolution, initialized as Model Garden's."""
        common = {
            "filters": filters,
            "kernel_size": 3,
            "padding": "same",
            "bias_initializer": bias_initializer,
            "bias_regularizer": self.bias_regularizer,
            "name": name,
            "dtype": self.dtype_policy,
        }
        if not self.use_separable_conv:
            return keras.layers.Conv2D(
                kernel_initializer=keras.initializers.RandomNormal(stddev=1e-5),
                kernel_regularizer=self.kernel_regularizer,
                **common,
            )
        if attribute:  # Model Garden leaves separable attribute predictors at the defaults.
            return keras.layers.SeparableConv2D(**common)
        return keras.layers.SeparableConv2D(
            depthwise_initializer=keras.initializers.RandomNormal(stddev=0.03),
            pointwise_initializer=keras.initializers.RandomNormal(stddev=0.03),
            depthwise_regularizer=self.kernel_regularizer,
            pointwise_regularizer=self.kernel_regularizer,
            **common,
        )

    @property
    def levels(self) -> list[str]:
        """The feature levels the head reads and predicts, as strings."""
        return [str(level) for level in range(self.min_level, self.max_level + 1)]

    def build(self, input_shape: Mapping[str, Sequence[int | None]]) -> None:
        shape = _level_feature_shape(self.levels, input_shape)
        self.classnet.build(shape)
        self.boxnet.build(shape)
        tower_shape = self.classnet.compute_output_shape(shape)
        for name in self._classifier_names + self._box_regressor_names:
            getattr(self, name).build(tower_shape)
        for tower, predictor in self._attribute_layers:
            source = self.classnet if tower is None else getattr(self, tower)
            if tower is not None and not source.built:
                source.build(shape)
            getattr(self, predictor).build(source.compute_output_shape(shape))

    def call(
        self, features: Mapping[str, Any], training: bool | None = None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
        """Predicts class logits, box offsets and attributes at every level.

        Args:
          features: Level (`"3"`, ...) -> `[batch, height, width, channels]`.
          training: Batch normalization uses batch statistics (and updates its moving
            ones) when True.

        Returns:
          `(scores, boxes, attributes)`, see the class docstring.
        """
        missing = [level for level in self.levels if level not in features]
        if missing:
            raise ValueError(
                f"RetinaNetHead needs feature levels {self.levels}; {missing} are missing"
            )
        scores: dict[str, Any] = {}
        boxes: dict[str, Any] = {}
        attributes: dict[str, dict[str, Any]] = {head["name"]: {} for head in self.attribute_heads}
        for index, level in enumerate(self.levels):
            x = features[level]
            predictor = 0 if self.share_level_convs else index
            class_features = self.classnet(x, level_index=index, training=training)
            classifier = getattr(self, self._classifier_names[predictor])
            scores[level] = ops.cast(classifier(class_features), "float32")
            box_features = self.boxnet(x, level_index=index, training=training)
            box_regressor = getattr(self, self._box_regressor_names[predictor])
            boxes[level] = ops.cast(box_regressor(box_features), "float32")
            tower_outputs: dict[str, Any] = {}
            for head, (tower, predictor_name) in zip(
                self.attribute_heads, self._attribute_layers, strict=True
            ):
                if tower is None:
                    source = class_features
                else:
                    if tower not in tower_outputs:
                        tower_outputs[tower] = getattr(self, tower)(
                            x, level_index=index, training=training
                        )
                    source = tower_outputs[tower]
                prediction = getattr(self, predictor_name)(source)
                attributes[head["name"]][level] = ops.cast(prediction, "float32")
        return scores, boxes, attributes

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "min_level": self.min_level,
            "max_level": self.max_level,
            "num_classes": self.num_classes,
            "num_anchors_per_location": self.num_anchors_per_location,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "attribute_heads": [dict(head) for head in self.attribute_heads],
            "use_separable_conv": self.use_separable_conv,
            **self.norm_activation_config(),
            "num_params_per_anchor": self.num_params_per_anchor,
            "share_classification_heads": self.share_classification_heads,
            "share_level_convs": self.share_level_convs,
        }


def build_retinanet_head(
    input_specs: Mapping[str, Sequence[int | None]] | Sequence[Sequence[int | None]],
    num_classes: int,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    min_level: int,
    max_level: int,
    num_anchors_per_location: int | Mapping[str, int],
    num_convs: int = 4,
    num_filters: int = 256,
    use_separable_conv: bool = False,
    attribute_heads: Sequence[Any] | None = None,
    share_classification_heads: bool = False,
    share_level_convs: bool | None = True,
) -> RetinaNetHead:
    """Builds a `RetinaNetHead` (the `retinanet` entry of `garden.heads`).

    The settings are the fields of `configs.retinanet.RetinaNetHead` plus what the model
    factory adds from the model config: `min_level`, `max_level` and
    `num_anchors_per_location` (`num_scales * len(aspect_ratios)`). Activation and batch
    normalization come from `norm_activation_config`, as in Model Garden's factory.

    Args:
      input_specs: The shapes of the features the head reads: level -> shape, or the
        shapes of levels `min_level` to `max_level` in order (what
        `heads.factory.build_head` passes on).
      num_classes: Classes per anchor, background included.
      norm_activation_config: The towers' activation and batch normalization.
      l2_regularizer: Kernel regularizer (weight decay), or None.
      min_level, max_level, num_anchors_per_location, num_convs, num_filters,
        use_separable_conv, attribute_heads, share_classification_heads: As in
        `RetinaNetHead` (`attribute_heads` may hold `AttributeHead` configs).
      share_level_convs: As in `RetinaNetHead`; None (Model Garden's optional field)
        means False, as there.

    Raises:
      ConfigError: If the feature shapes do not cover the levels with rank-4 features of
        one width, or a setting is out of range.
    """
    levels = [str(level) for level in range(int(min_level), int(max_level) + 1)]
    shapes = _level_input_specs(input_specs, levels, "retinanet")
    _level_feature_shape(levels, shapes)  # Checks levels, ranks and widths, with a clear error.
    return RetinaNetHead(
        min_level=min_level,
        max_level=max_level,
        num_classes=num_classes,
        num_anchors_per_location=num_anchors_per_location,
        num_convs=num_convs,
        num_filters=num_filters,
        attribute_heads=attribute_heads,
        use_separable_conv=use_separable_conv,
        **norm_activation_kwargs(norm_activation_config, l2_regularizer),
        share_classification_heads=share_classification_heads,
        share_level_convs=bool(share_level_convs),
    )


@keras.saving.register_keras_serializable(package="garden_vision")
class RPNHead(NormActivationSettings, keras.layers.Layer):
    """The region proposal network's head over feature levels `min_level` to `max_level`.

    Model Garden's `RPNHead`: `num_convs` 3x3 convolutions of `num_filters`, each followed
    by batch normalization and the activation, shared by every level while each level keeps
    its own batch normalization; then a 1x1 convolution with one objectness logit per anchor
    and a 1x1 convolution with four box offsets per anchor, both shared by every level.

    Called on the decoder's features, `{str(level): [batch, height_l, width_l, channels]}`
    (every level the same width), it returns `(scores, boxes)`:

    - `scores[str(level)]`: `[batch, height_l, width_l, num_anchors_per_location]`
      objectness logits (sigmoid: the anchor holds an object);
    - `boxes[str(level)]`: `[batch, height_l, width_l, 4 * num_anchors_per_location]` box
      offsets, anchor-major (`[dy, dx, dh, dw]` per anchor, see `ops.box_ops.encode_boxes`).

    Outputs are float32 whatever the compute dtype, for stable losses and box decoding.
    Initialization follows Model Garden: tower kernels N(0, 0.01), predictor kernels
    N(0, 1e-5), zero biases. Separable convolutions (the mobile Mask R-CNN) keep Keras'
    default kernel initializers and, as in Model Garden, get no kernel regularizer.

    Example:

    ```python
    head = RPNHead(min_level=2, max_level=6, num_anchors_per_location=3)
    scores, boxes = head(fpn_features)  # scores["2"]: (batch, H2, W2, 3)
    ```

    Args:
      min_level: The lowest feature level.
      max_level: The highest feature level.
      num_anchors_per_location: Anchors per position (`num_scales * len(aspect_ratios)`).
      num_convs: Convolutions before the predictors (0 predicts from the features).
      num_filters: Their width.
      use_separable_conv: Depthwise-separable convolutions, predictors included.
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
        min_level: int,
        max_level: int,
        num_anchors_per_location: int,
        num_convs: int = 1,
        num_filters: int = 256,
        use_separable_conv: bool = False,
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
        if int(min_level) > int(max_level):
            raise ConfigError(f"RPNHead `min_level` {min_level} is above `max_level` {max_level}")
        anchors, num_convs, num_filters = checked_ints(
            "RPNHead",
            (
                ("num_anchors_per_location", num_anchors_per_location, 1),
                ("num_convs", num_convs, 0),
                ("num_filters", num_filters, 1),
            ),
        )
        self.min_level = int(min_level)
        self.max_level = int(max_level)
        self.num_anchors_per_location = int(anchors)
        self.num_convs = int(num_convs)
        self.num_filters = int(num_filters)
        self.use_separable_conv = bool(use_separable_conv)
        self.set_norm_activation(
            activation,
            use_sync_bn,
            norm_momentum,
            norm_epsilon,
            kernel_regularizer,
            bias_regularizer,
        )

        # === Tower: shared convolutions, per-level batch normalization ===
        self.rpn_tower = _PredictionTower(
            num_levels=len(self.levels),
            num_convs=self.num_convs,
            num_filters=self.num_filters,
            share_level_convs=True,
            use_separable_conv=self.use_separable_conv,
            activation=activation,
            use_sync_bn=self.use_sync_bn,
            norm_momentum=norm_momentum,
            norm_epsilon=norm_epsilon,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            name="rpn_tower",
            dtype=self.dtype_policy,
        )

        # === Predictors ===
        self.rpn_scores = self._predictor(self.num_anchors_per_location, "rpn_scores")
        self.rpn_boxes = self._predictor(4 * self.num_anchors_per_location, "rpn_boxes")

    def _predictor(self, filters: int, name: str) -> keras.layers.Layer:
        """A 1x1 prediction convolution, initialized as Model Garden's."""
        common = {
            "filters": filters,
            "kernel_size": 1,
            "padding": "valid",
            "bias_initializer": "zeros",
            "bias_regularizer": self.bias_regularizer,
            "name": name,
            "dtype": self.dtype_policy,
        }
        if self.use_separable_conv:
            return keras.layers.SeparableConv2D(**common)
        return keras.layers.Conv2D(
            kernel_initializer=keras.initializers.RandomNormal(stddev=1e-5),
            kernel_regularizer=self.kernel_regularizer,
            **common,
        )

    @property
    def levels(self) -> list[str]:
        """The feature levels the head reads and predicts, as strings."""
        return [str(level) for level in range(self.min_level, self.max_level + 1)]

    def build(self, input_shape: Mapping[str, Sequence[int | None]]) -> None:
        shape = _level_feature_shape(self.levels, input_shape, owner="RPNHead")
        self.rpn_tower.build(shape)
        tower_shape = self.rpn_tower.compute_output_shape(shape)
        self.rpn_scores.build(tower_shape)
        self.rpn_boxes.build(tower_shape)

    def call(
        self, features: Mapping[str, Any], training: bool | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Predicts objectness logits and box offsets at every level.

        Args:
          features: Level (`"2"`, ...) -> `[batch, height, width, channels]`.
          training: Batch normalization uses batch statistics (and updates its moving
            ones) when True.

        Returns:
          `(scores, boxes)`, see the class docstring.
        """
        missing = [level for level in self.levels if level not in features]
        if missing:
            raise ValueError(f"RPNHead needs feature levels {self.levels}; {missing} are missing")
        scores: dict[str, Any] = {}
        boxes: dict[str, Any] = {}
        for index, level in enumerate(self.levels):
            x = self.rpn_tower(features[level], level_index=index, training=training)
            scores[level] = ops.cast(self.rpn_scores(x), "float32")
            boxes[level] = ops.cast(self.rpn_boxes(x), "float32")
        return scores, boxes

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "min_level": self.min_level,
            "max_level": self.max_level,
            "num_anchors_per_location": self.num_anchors_per_location,
            "num_convs": self.num_convs,
            "num_filters": self.num_filters,
            "use_separable_conv": self.use_separable_conv,
            **self.norm_activation_config(),
        }


def build_rpn_head(
    input_specs: Mapping[str, Sequence[int | None]] | Sequence[Sequence[int | None]],
    num_classes: int | None,
    norm_activation_config: NormActivation,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    min_level: int,
    max_level: int,
    num_anchors_per_location: int,
    num_convs: int = 1,
    num_filters: int = 256,
    use_separable_conv: bool = False,
) -> RPNHead:
    """Builds an `RPNHead` (the `rpn` entry of `garden.heads`).

    The settings are the fields of Model Garden's `configs.maskrcnn.RPNHead` (`num_convs`,
    `num_filters`, `use_separable_conv`, with its defaults) plus what the model factory adds
    from the model config: `min_level`, `max_level` and `num_anchors_per_location`
    (`num_scales * len(aspect_ratios)`). Activation and batch normalization come from
    `norm_activation_config`, as in Model Garden's Mask R-CNN factory.

    Args:
      input_specs: The shapes of the features the head reads: level -> shape, or the
        shapes of levels `min_level` to `max_level` in order.
      num_classes: Passed by every head factory; the RPN predicts objectness only, so it
        is not used.
      norm_activation_config: The tower's activation and batch normalization.
      l2_regularizer: Kernel regularizer (weight decay), or None.
      min_level, max_level, num_anchors_per_location, num_convs, num_filters,
        use_separable_conv: As in `RPNHead`.

    Raises:
      ConfigError: If the feature shapes do not cover the levels with rank-4 features of
        one width, or a setting is out of range.
    """
    del num_classes  # Objectness is class-agnostic.
    levels = [str(level) for level in range(int(min_level), int(max_level) + 1)]
    shapes = _level_input_specs(input_specs, levels, "rpn")
    _level_feature_shape(levels, shapes, owner="RPNHead")
    return RPNHead(
        min_level=min_level,
        max_level=max_level,
        num_anchors_per_location=num_anchors_per_location,
        num_convs=num_convs,
        num_filters=num_filters,
        use_separable_conv=use_separable_conv,
        **norm_activation_kwargs(norm_activation_config, l2_regularizer),
    )
