"""The Vision Transformer backbone (Dosovitskiy et al., 2020) and DeiT (Touvron et al., 2020).

`VisionTransformer` cuts the image into patches, embeds them as tokens with learned position
embeddings (resized when the input's patch grid is not the one they were made for), optionally
prepends a class token (and DeiT's distillation token), runs a stack of pre-norm transformer
encoder blocks and pools the result:

- `"pre_logits"`, `[batch, 1, 1, width]`: the class token's final state (pooler `token`) or
  the tokens' average (`gap`, `none`), through a tanh Dense of `representation_size` when
  that is set. A classification head adds its Dense on top of it.
- `"distilled"`, `[batch, 1, 1, hidden_size]`: the distillation token's final state.
- `"encoded_tokens"`, `[batch, tokens, width]`: with pooler `none` and
  `output_encoded_tokens`.
- A level key (`str(round(log2(patch_size)))`, `"4"` for 16-pixel patches),
  `[batch, H / patch, W / patch, hidden_size]`: with `output_2d_feature_maps`, the patch
  tokens as a feature map for dense-prediction decoders.
- `"attention_scores"`, `[batch, heads, tokens, tokens]`: with `output_attention_scores`, the
  last block's attention probabilities.

`build_vit` builds it from a `configs.backbones.VisionTransformer` whose `model_name` picks one
of `VIT_SPECS` (Model Garden's presets) or `vit-custom`.
"""

from __future__ import annotations

import collections.abc
import math
import types
from typing import Any

import keras
from keras import ops

from garden_core.config import ConfigError
from garden_vision.configs import backbones as backbone_configs
from garden_vision.configs.common import NormActivation
from garden_vision.modeling.backbones.backbone import Backbone
from garden_vision.modeling.layers.transformer_layers import (
    ClassToken,
    PatchEmbedding,
    PositionEmbedding,
    TransformerEncoderBlock,
)

# Model Garden's ViT presets (official/vision/modeling/backbones/vit_specs.py): token width,
# patch side and the encoder's MLP width, heads and depth.
VIT_SPECS: collections.abc.Mapping[str, collections.abc.Mapping[str, int]] = types.MappingProxyType(
    {
        "vit-ti16": dict(hidden_size=192, patch_size=16, mlp_dim=768, num_heads=3, num_layers=12),
        "vit-s16": dict(hidden_size=384, patch_size=16, mlp_dim=1536, num_heads=6, num_layers=12),
        "vit-b16": dict(hidden_size=768, patch_size=16, mlp_dim=3072, num_heads=12, num_layers=12),
        "vit-b32": dict(hidden_size=768, patch_size=32, mlp_dim=3072, num_heads=12, num_layers=12),
        "vit-l16": dict(hidden_size=1024, patch_size=16, mlp_dim=4096, num_heads=16, num_layers=24),
        "vit-l32": dict(hidden_size=1024, patch_size=32, mlp_dim=4096, num_heads=16, num_layers=24),
        "vit-h14": dict(hidden_size=1280, patch_size=14, mlp_dim=5120, num_heads=16, num_layers=32),
        "vit-g14": dict(hidden_size=1408, patch_size=14, mlp_dim=5632, num_heads=16, num_layers=40),
        "vit-G14": dict(hidden_size=1664, patch_size=14, mlp_dim=8192, num_heads=16, num_layers=48),
        "vit-e14": dict(
            hidden_size=1792, patch_size=14, mlp_dim=15360, num_heads=16, num_layers=56
        ),
    }
)
CUSTOM_MODEL_NAME = "vit-custom"
POOLERS = ("token", "gap", "none")
POS_EMBED_INTERPOLATIONS = ("bilinear", "bicubic")


def _choices(values) -> str:
    return ", ".join(repr(value) for value in values)


class _TokensToGrid(keras.layers.Layer):
    """Reshapes `[batch, rows * cols, width]` tokens to the `[batch, rows, cols, width]` grid
    of a reference tensor (static or known only at run time)."""

    def call(self, tokens, grid):
        shape = ops.shape(grid)
        return ops.reshape(tokens, (shape[0], shape[1], shape[2], tokens.shape[-1]))

    def compute_output_shape(self, tokens_shape, grid_shape):
        return (tokens_shape[0], grid_shape[1], grid_shape[2], tokens_shape[-1])


@keras.saving.register_keras_serializable(package="garden_vision")
class VisionTransformer(Backbone):
    """Vision Transformer backbone: ViT (Dosovitskiy et al., 2020), DeiT (Touvron et al., 2020).

    Patches of `patch_size` pixels are projected to `hidden_size`-wide tokens, given learned
    position embeddings, optionally preceded by a class token (pooler `token`) and DeiT's
    distillation token, and encoded by `num_layers` pre-norm `TransformerEncoderBlock`s and a
    final LayerNorm (epsilon 1e-6). See the module docstring for the outputs. The batch
    normalization settings of other backbones do not apply: ViT uses layer normalization.

    Args:
      mlp_dim: Width of each block's MLP.
      num_heads: Attention heads per block; must divide `hidden_size`.
      num_layers: Number of encoder blocks.
      attention_dropout_rate: Dropout on the attention probabilities.
      dropout_rate: Dropout on the embedded tokens, after each attention and MLP layer.
      init_stochastic_depth_rate: Stochastic-depth drop rate of the last block; block `i`
        (from 1) drops with `init_stochastic_depth_rate * i / num_layers`. Training only.
      input_specs: The image input, a `keras.layers.InputSpec` or a shape list
        `[batch, height, width, channels]`; height and width must be multiples of
        `patch_size`, or None (then `pos_embed_shape` is required). Default
        `[None, 224, 224, 3]`.
      patch_size: Side of the square patches, in pixels.
      hidden_size: Token width.
      representation_size: Width of a tanh Dense on the pooled token ("pre-logits", as ViT's
        pre-training); 0 for none.
      pooler: `token` (the class token's final state), `gap` (average of all tokens) or
        `none` (no class token; tokens averaged for `pre_logits`, the whole sequence reported
        as `encoded_tokens` when `output_encoded_tokens`).
      kernel_regularizer: Regularizer of every kernel (weight decay), or None.
      original_init: ViT's initializers (LeCun normal patch and pre-logits kernels, Glorot
        uniform block kernels) rather than DeiT's (He uniform, truncated normal 0.02).
      output_encoded_tokens: With pooler `none`, report the encoded tokens (through the
        representation Dense when there is one) as `encoded_tokens`.
      output_2d_feature_maps: Also report the patch tokens as a `[batch, H / patch_size,
        W / patch_size, hidden_size]` map under the level key
        `str(round(log2(patch_size)))`.
      pos_embed_shape: `(rows, cols)` patch grid of the position embedding, if it differs
        from the input's (it is then resized to the input's grid on every call); None uses
        the input's grid.
      layer_scale_init_value: LayerScale's initial value (CaiT); 0 disables it.
      output_attention_scores: Also report the last block's attention probabilities as
        `attention_scores`.
      add_distillation_token: DeiT's distillation token, placed after the class token and
        reported as `distilled`; needs pooler `token`.
      pos_embed_interpolation: How the position embedding is resized: `bilinear` (Model
        Garden's) or `bicubic` (DeiT's and timm's).
      **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
      ConfigError: For an unknown pooler or interpolation, a distillation token without the
        class token, an input size that is not a multiple of `patch_size`, an input of
        unknown size without `pos_embed_shape`, or `num_heads` not dividing `hidden_size`.
    """

    default_input_shape = (None, 224, 224, 3)

    def __init__(
        self,
        mlp_dim: int = 3072,
        num_heads: int = 12,
        num_layers: int = 12,
        attention_dropout_rate: float = 0.0,
        dropout_rate: float = 0.1,
        init_stochastic_depth_rate: float = 0.0,
        input_specs: keras.layers.InputSpec | list[int | None] | None = None,
        patch_size: int = 16,
        hidden_size: int = 768,
        representation_size: int = 0,
        pooler: str = "token",
        kernel_regularizer: Any = None,
        original_init: bool = True,
        output_encoded_tokens: bool = True,
        output_2d_feature_maps: bool = False,
        pos_embed_shape: tuple[int, int] | list[int] | None = None,
        layer_scale_init_value: float = 0.0,
        output_attention_scores: bool = False,
        add_distillation_token: bool = False,
        pos_embed_interpolation: str = "bilinear",
        **kwargs: Any,
    ):
        input_shape = tuple(self.input_spec_of(input_specs).shape)
        pos_embed_shape = None if pos_embed_shape is None else tuple(map(int, pos_embed_shape))
        kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        _check_arguments(
            input_shape=input_shape,
            patch_size=patch_size,
            hidden_size=hidden_size,
            num_heads=num_heads,
            pooler=pooler,
            pos_embed_shape=pos_embed_shape,
            add_distillation_token=add_distillation_token,
            pos_embed_interpolation=pos_embed_interpolation,
        )
        if original_init:
            embedding_init, block_init = "lecun_normal", "glorot_uniform"
        else:
            embedding_init = "he_uniform"
            block_init = keras.initializers.TruncatedNormal(stddev=0.02)

        inputs = keras.Input(shape=input_shape[1:], name="image")
        grid = PatchEmbedding(
            hidden_size,
            patch_size,
            kernel_initializer=embedding_init,
            kernel_regularizer=kernel_regularizer,
            name="embedding",
        )(inputs)
        grid = PositionEmbedding(
            grid_shape=pos_embed_shape,
            interpolation=pos_embed_interpolation,
            name="posembed_input",
        )(grid)
        x = keras.layers.Reshape((-1, hidden_size), name="flatten_patches")(grid)
        num_prefix_tokens = 0
        if add_distillation_token:
            # Prepended first, so that the class token ends up before it.
            x = ClassToken(
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="distillation_token",
            )(x)
            num_prefix_tokens += 1
        if pooler == "token":
            x = ClassToken(initializer="zeros", name="cls")(x)
            num_prefix_tokens += 1
        x = keras.layers.Dropout(dropout_rate, name="embedding_dropout")(x)

        attention_scores = None
        for index in range(num_layers):
            block = TransformerEncoderBlock(
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                stochastic_depth_rate=init_stochastic_depth_rate * (index + 1) / num_layers,
                layer_scale_init_value=layer_scale_init_value,
                norm_epsilon=1e-6,
                return_attention_scores=output_attention_scores and index == num_layers - 1,
                kernel_initializer=block_init,
                kernel_regularizer=kernel_regularizer,
                name=f"encoderblock_{index}",
            )
            x = block(x)
            if block.return_attention_scores:
                x, attention_scores = x
        x = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")(x)

        if pooler == "token":
            pooled = x[:, 0]
            patch_tokens = x[:, num_prefix_tokens:]
        else:
            pooled = ops.mean(x, axis=1)
            patch_tokens = x

        representation = None
        if representation_size:
            representation = keras.layers.Dense(
                representation_size,
                activation="tanh",
                kernel_initializer=embedding_init,
                kernel_regularizer=kernel_regularizer,
                name="pre_logits",
            )
            pooled = representation(pooled)
        endpoints = {
            "pre_logits": keras.layers.Reshape(
                (1, 1, representation_size or hidden_size), name="pre_logits_map"
            )(pooled)
        }
        if add_distillation_token:
            endpoints["distilled"] = keras.layers.Reshape((1, 1, hidden_size), name="distilled")(
                x[:, 1]
            )
        if pooler == "none" and output_encoded_tokens:
            endpoints["encoded_tokens"] = representation(x) if representation else x
        if output_2d_feature_maps:
            level = str(round(math.log2(patch_size)))
            endpoints[level] = _TokensToGrid(name="feature_map")(patch_tokens, grid)
        if attention_scores is not None:
            endpoints["attention_scores"] = attention_scores

        super().__init__(
            inputs=inputs,
            outputs=endpoints,
            config={
                "mlp_dim": mlp_dim,
                "num_heads": num_heads,
                "num_layers": num_layers,
                "attention_dropout_rate": attention_dropout_rate,
                "dropout_rate": dropout_rate,
                "init_stochastic_depth_rate": init_stochastic_depth_rate,
                "input_specs": list(input_shape),
                "patch_size": patch_size,
                "hidden_size": hidden_size,
                "representation_size": representation_size,
                "pooler": pooler,
                "kernel_regularizer": kernel_regularizer,
                "original_init": original_init,
                "output_encoded_tokens": output_encoded_tokens,
                "output_2d_feature_maps": output_2d_feature_maps,
                "pos_embed_shape": list(pos_embed_shape) if pos_embed_shape else None,
                "layer_scale_init_value": layer_scale_init_value,
                "output_attention_scores": output_attention_scores,
                "add_distillation_token": add_distillation_token,
                "pos_embed_interpolation": pos_embed_interpolation,
            },
            **kwargs,
        )


def _check_arguments(
    *,
    input_shape: tuple[int | None, ...],
    patch_size: int,
    hidden_size: int,
    num_heads: int,
    pooler: str,
    pos_embed_shape: tuple[int, int] | None,
    add_distillation_token: bool,
    pos_embed_interpolation: str,
) -> None:
    """Raises ConfigError for settings the Vision Transformer cannot be built with."""
    if pooler not in POOLERS:
        raise ConfigError(
            f"`pooler` = {pooler!r} is not supported: expected one of {_choices(POOLERS)}"
        )
    if pos_embed_interpolation not in POS_EMBED_INTERPOLATIONS:
        raise ConfigError(
            f"`pos_embed_interpolation` = {pos_embed_interpolation!r} is not supported: "
            f"expected one of {_choices(POS_EMBED_INTERPOLATIONS)}"
        )
    if add_distillation_token and pooler != "token":
        raise ConfigError(
            f"`add_distillation_token` = True needs `pooler` = 'token' (it follows the class "
            f"token), got `pooler` = {pooler!r}"
        )
    if patch_size < 1 or hidden_size < 1 or num_heads < 1:
        raise ConfigError(
            f"`patch_size`, `hidden_size` and `transformer.num_heads` must be >= 1, got "
            f"{patch_size}, {hidden_size} and {num_heads}"
        )
    if hidden_size % num_heads:
        raise ConfigError(
            f"`transformer.num_heads` = {num_heads} does not divide `hidden_size` = {hidden_size}"
        )
    height, width = input_shape[1], input_shape[2]
    for side, value in (("height", height), ("width", width)):
        if value is not None and value % patch_size:
            raise ConfigError(
                f"the input {side} {value} is not a multiple of `patch_size` = {patch_size}: "
                f"resize or crop the images to a multiple of {patch_size}"
            )
    if (height is None or width is None) and pos_embed_shape is None:
        raise ConfigError(
            "`pos_embed_shape` must be set when the input height or width is not fixed "
            f"(input shape {list(input_shape)}): it is the patch grid the position embedding "
            "is learned at"
        )
    if pos_embed_shape is not None and (len(pos_embed_shape) != 2 or min(pos_embed_shape) < 1):
        raise ConfigError(f"`pos_embed_shape` must be (rows, cols), got {pos_embed_shape}")


def vit_spec(backbone_config: backbone_configs.VisionTransformer) -> dict[str, int]:
    """The architecture `backbone_config` describes: its preset's, or its own for `vit-custom`.

    Returns:
      A dict with `hidden_size`, `patch_size`, `mlp_dim`, `num_heads` and `num_layers`.

    Raises:
      ConfigError: If `model_name` is neither a preset of `VIT_SPECS` nor `vit-custom`.
    """
    name = backbone_config.model_name
    if name == CUSTOM_MODEL_NAME:
        transformer = backbone_config.transformer
        return {
            "hidden_size": backbone_config.hidden_size,
            "patch_size": backbone_config.patch_size,
            "mlp_dim": transformer.mlp_dim,
            "num_heads": transformer.num_heads,
            "num_layers": transformer.num_layers,
        }
    if name not in VIT_SPECS:
        raise ConfigError(
            f"`backbone.vit.model_name` = {name!r} is not supported: expected one of "
            f"{_choices([*VIT_SPECS, CUSTOM_MODEL_NAME])}"
        )
    return dict(VIT_SPECS[name])


_DEFAULTS = backbone_configs.VisionTransformer()


def build_vit(
    input_specs: keras.layers.InputSpec,
    norm_activation_config: NormActivation | None = None,
    l2_regularizer: keras.regularizers.Regularizer | None = None,
    *,
    model_name: str = _DEFAULTS.model_name,
    pooler: str = _DEFAULTS.pooler,
    representation_size: int = _DEFAULTS.representation_size,
    hidden_size: int = _DEFAULTS.hidden_size,
    patch_size: int = _DEFAULTS.patch_size,
    transformer: backbone_configs.Transformer | collections.abc.Mapping | None = None,
    init_stochastic_depth_rate: float = _DEFAULTS.init_stochastic_depth_rate,
    original_init: bool = _DEFAULTS.original_init,
    pos_embed_shape: tuple[int, int] | list[int] | None = _DEFAULTS.pos_embed_shape,
    output_encoded_tokens: bool = _DEFAULTS.output_encoded_tokens,
    output_2d_feature_maps: bool = _DEFAULTS.output_2d_feature_maps,
    layer_scale_init_value: float = _DEFAULTS.layer_scale_init_value,
    output_attention_scores: bool = _DEFAULTS.output_attention_scores,
    add_distillation_token: bool = _DEFAULTS.add_distillation_token,
) -> VisionTransformer:
    """Builds a `VisionTransformer` (the `vit` entry of `garden.backbones`).

    The keyword settings are the fields of `configs.backbones.VisionTransformer`, with its
    defaults: `model_name` picks a preset of `VIT_SPECS` (or `vit-custom`, which takes
    `hidden_size`, `patch_size` and the widths and depth of `transformer`).

    Args:
      input_specs: The image input, `InputSpec(shape=[None, height, width, channels])`;
        height and width must be multiples of the patch size (or None, with
        `pos_embed_shape` set).
      norm_activation_config: Unused: ViT normalizes with LayerNorm (epsilon 1e-6) whatever
        the batch-normalization settings are. Accepted as every backbone builder is.
      l2_regularizer: Kernel regularizer for weight decay, or None.
      model_name, pooler, representation_size, hidden_size, patch_size,
        init_stochastic_depth_rate, original_init, pos_embed_shape, output_encoded_tokens,
        output_2d_feature_maps, layer_scale_init_value, output_attention_scores,
        add_distillation_token: As in `configs.backbones.VisionTransformer`.
      transformer: A `configs.backbones.Transformer` or a mapping of its fields (its
        dropout rates always apply; its sizes with `vit-custom`); None for its defaults.

    Raises:
      ConfigError: For an unknown `model_name` or `pooler`, an input size that is not a
        multiple of the patch size, or another setting `VisionTransformer` rejects.
    """
    del norm_activation_config  # ViT has no batch normalization.
    if transformer is None:
        transformer = backbone_configs.Transformer()
    elif isinstance(transformer, collections.abc.Mapping):
        transformer = backbone_configs.Transformer.from_dict(
            transformer, path="backbone.vit.transformer"
        )
    config = backbone_configs.VisionTransformer(
        model_name=model_name,
        pooler=pooler,
        representation_size=representation_size,
        hidden_size=hidden_size,
        patch_size=patch_size,
        transformer=transformer,
        init_stochastic_depth_rate=init_stochastic_depth_rate,
        original_init=original_init,
        pos_embed_shape=pos_embed_shape,
        output_encoded_tokens=output_encoded_tokens,
        output_2d_feature_maps=output_2d_feature_maps,
        layer_scale_init_value=layer_scale_init_value,
        output_attention_scores=output_attention_scores,
        add_distillation_token=add_distillation_token,
    )
    spec = vit_spec(config)
    return VisionTransformer(
        mlp_dim=spec["mlp_dim"],
        num_heads=spec["num_heads"],
        num_layers=spec["num_layers"],
        attention_dropout_rate=transformer.attention_dropout_rate,
        dropout_rate=transformer.dropout_rate,
        init_stochastic_depth_rate=init_stochastic_depth_rate,
        input_specs=input_specs,
        patch_size=spec["patch_size"],
        hidden_size=spec["hidden_size"],
        representation_size=representation_size,
        pooler=pooler,
        kernel_regularizer=l2_regularizer,
        original_init=original_init,
        output_encoded_tokens=output_encoded_tokens,
        output_2d_feature_maps=output_2d_feature_maps,
        pos_embed_shape=pos_embed_shape,
        layer_scale_init_value=layer_scale_init_value,
        output_attention_scores=output_attention_scores,
        add_distillation_token=add_distillation_token,
    )
