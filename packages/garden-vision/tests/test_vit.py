"""Tests of the Vision Transformer backbone (ViT, DeiT) and its transformer layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from garden_core import plugins
from garden_core.config import ConfigError
from garden_vision.configs import backbones as backbone_configs
from garden_vision.modeling.backbones.factory import build_backbone
from garden_vision.modeling.backbones.vit import VIT_SPECS, VisionTransformer, build_vit
from garden_vision.modeling.layers.transformer_layers import (
    ClassToken,
    PatchEmbedding,
    PositionEmbedding,
    TransformerEncoderBlock,
)
from garden_vision.testing import classifier_parameter_count, run_backbone_test

# A tiny vit-custom: 16-wide tokens, 2 blocks of 2 heads, 8-pixel patches.
TINY = {"hidden_size": 16, "patch_size": 8, "mlp_dim": 32, "num_heads": 2, "num_layers": 2}
TINY_CONFIG = {
    "model_name": "vit-custom",
    "hidden_size": 16,
    "patch_size": 8,
    "transformer": {"mlp_dim": 32, "num_heads": 2, "num_layers": 2},
}


def _images(size: int = 32, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, size, size, 3), dtype=np.float32)


def _tiny_kwargs(size: int | None = 32, **overrides) -> dict:
    return {"input_specs": keras.layers.InputSpec(shape=[None, size, size, 3]), **TINY, **overrides}


# The shared backbone checks.


def test_class_token_pooler(tmp_path):
    run_backbone_test(
        VisionTransformer,
        _tiny_kwargs(pooler="token"),
        _images(),
        {"pre_logits": (2, 1, 1, 16)},
        tmp_path,
    )


def test_gap_pooler_with_representation(tmp_path):
    model = run_backbone_test(
        VisionTransformer,
        _tiny_kwargs(
            pooler="gap",
            representation_size=8,
            original_init=False,
            kernel_regularizer=keras.regularizers.L2(1e-4),
        ),
        _images(),
        {"pre_logits": (2, 1, 1, 8)},
        tmp_path,
    )
    assert model.get_layer("pre_logits").units == 8
    # Weight decay on every kernel: patches, pre-logits and 4 attention + 2 MLP per block.
    assert len(model.losses) == 2 + 2 * 6
    # No class token with global average pooling.
    assert not [layer for layer in model.layers if isinstance(layer, ClassToken)]


def test_distillation_token(tmp_path):
    model = run_backbone_test(
        VisionTransformer,
        _tiny_kwargs(add_distillation_token=True),
        _images(),
        {"pre_logits": (2, 1, 1, 16), "distilled": (2, 1, 1, 16)},
        tmp_path,
    )
    # The class token, then the distillation token, then the 16 patch tokens.
    tokens = model.get_layer("cls").output
    assert tuple(tokens.shape) == (None, 18, 16)


def test_2d_feature_maps(tmp_path):
    run_backbone_test(
        VisionTransformer,
        _tiny_kwargs(output_2d_feature_maps=True),
        _images(),
        {"pre_logits": (2, 1, 1, 16), "3": (2, 4, 4, 16)},
        tmp_path,
    )


def test_encoded_tokens_attention_scores_layer_scale_and_stochastic_depth(tmp_path):
    run_backbone_test(
        VisionTransformer,
        _tiny_kwargs(
            pooler="none",
            output_encoded_tokens=True,
            output_attention_scores=True,
            layer_scale_init_value=0.1,
            init_stochastic_depth_rate=0.2,
            dropout_rate=0.1,
            attention_dropout_rate=0.1,
        ),
        _images(),
        {
            "pre_logits": (2, 1, 1, 16),
            "encoded_tokens": (2, 16, 16),
            "attention_scores": (2, 2, 16, 16),
        },
        tmp_path,
    )


def test_input_of_unknown_size(tmp_path):
    # Learned on a 4x4 grid, run on a 6x6 one: the embedding is resized on every call.
    model = run_backbone_test(
        VisionTransformer,
        _tiny_kwargs(size=None, pos_embed_shape=(4, 4), output_2d_feature_maps=True),
        _images(48),
        {"pre_logits": (2, 1, 1, 16), "3": (2, 6, 6, 16)},
        tmp_path,
    )
    assert model.output_specs["3"] == (None, None, None, 16)
    outputs = model(_images(40), training=False)
    assert tuple(outputs["3"].shape) == (2, 5, 5, 16)


# Builders and configs.


def test_build_vit_custom_matches_the_class():
    config = backbone_configs.VisionTransformer.from_dict(TINY_CONFIG)
    specs = keras.layers.InputSpec(shape=[None, 32, 32, 3])
    built = build_vit(specs, None, **plugins.fields_of(config))
    direct = VisionTransformer(input_specs=specs, dropout_rate=0.0, **TINY)
    assert built.count_params() == direct.count_params()
    assert built.output_specs == {"pre_logits": (None, 1, 1, 16)}
    assert build_vit(specs, **TINY_CONFIG).count_params() == direct.count_params()


def test_build_backbone_through_the_registry():
    backbone = backbone_configs.Backbone(
        type="vit", vit=backbone_configs.VisionTransformer.from_dict(TINY_CONFIG)
    )
    model = build_backbone(keras.layers.InputSpec(shape=[None, 32, 32, 3]), backbone)
    assert isinstance(model, VisionTransformer)
    assert tuple(model(_images())["pre_logits"].shape) == (2, 1, 1, 16)


@pytest.mark.parametrize(
    ("model_name", "published"),
    [
        # Touvron et al. 2021, "Training data-efficient image transformers" (DeiT), Table 1
        # lists DeiT-Ti at 5M and DeiT-S at 22M parameters.
        ("vit-ti16", 5_717_416),  # DeiT-Ti, 5.7 M.
        ("vit-s16", 22_050_664),  # DeiT-S, 22.1 M.
        # Exact counts of the 1000-class classifiers as Table 1's architectures give them
        # (the paper rounds ViT-B to 86M and lists ViT-L as 307M).
        ("vit-b16", 86_567_656),  # ViT-B/16, 86.6 M.
        ("vit-l16", 304_326_632),  # ViT-L/16, 304.3 M.
    ],
)
def test_parameter_counts_match_the_published_ones(model_name, published):
    config = backbone_configs.VisionTransformer(model_name=model_name)
    model = build_vit(
        keras.layers.InputSpec(shape=[None, 224, 224, 3]), **plugins.fields_of(config)
    )
    total = classifier_parameter_count(model)
    print(f"{model_name}: {total:,} parameters at 1000 classes, published {published:,}")
    assert abs(total - published) / published < 0.005


# Model Garden's presets: `VIT_SPECS` in official/vision/modeling/backbones/vit_specs.py of
# tf-models-official 2.20, as (hidden_size, patch_size, mlp_dim, num_heads, num_layers).
MODEL_GARDEN_VIT_SPECS = {
    "vit-ti16": (192, 16, 768, 3, 12),
    "vit-s16": (384, 16, 1536, 6, 12),
    "vit-b16": (768, 16, 3072, 12, 12),
    "vit-b32": (768, 32, 3072, 12, 12),
    "vit-l16": (1024, 16, 4096, 16, 24),
    "vit-l32": (1024, 32, 4096, 16, 24),
    "vit-h14": (1280, 14, 5120, 16, 32),
    "vit-g14": (1408, 14, 5632, 16, 40),
    "vit-G14": (1664, 14, 8192, 16, 48),
    "vit-e14": (1792, 14, 15360, 16, 56),
}
# Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", Table 1: layers, hidden size D,
# MLP size, heads and parameters of ViT-Base, ViT-Large and ViT-Huge.
PAPER_TABLE_1 = {
    "vit-b16": (12, 768, 3072, 12, 86e6),
    "vit-l16": (24, 1024, 4096, 16, 307e6),
    "vit-h14": (32, 1280, 5120, 16, 632e6),
}


def test_presets_are_model_garden_s():
    assert {
        name: (
            spec["hidden_size"],
            spec["patch_size"],
            spec["mlp_dim"],
            spec["num_heads"],
            spec["num_layers"],
        )
        for name, spec in VIT_SPECS.items()
    } == MODEL_GARDEN_VIT_SPECS


@pytest.mark.parametrize("model_name", sorted(PAPER_TABLE_1))
def test_presets_are_the_paper_s_table_1(model_name):
    layers, hidden, mlp, heads, _ = PAPER_TABLE_1[model_name]
    spec = VIT_SPECS[model_name]
    assert (spec["num_layers"], spec["hidden_size"], spec["mlp_dim"], spec["num_heads"]) == (
        layers,
        hidden,
        mlp,
        heads,
    )


def test_vit_h14_has_the_paper_s_632m_parameters():
    """ViT-H/14 is counted without building its 632M weights: every encoder block has the
    same size, so the count is exactly `p(1) + 31 * (p(2) - p(1))` with `p(n)` the count of
    the same model with n blocks."""
    layers, hidden, mlp, heads, published = PAPER_TABLE_1["vit-h14"]

    def count(num_layers):
        backbone = VisionTransformer(
            input_specs=keras.layers.InputSpec(shape=[None, 224, 224, 3]),
            hidden_size=hidden,
            patch_size=14,
            mlp_dim=mlp,
            num_heads=heads,
            num_layers=num_layers,
        )
        return classifier_parameter_count(backbone)

    one, two = count(1), count(2)
    total = one + (layers - 1) * (two - one)
    # Table 1 rounds to millions: 632M (the 1000-class classifier has 632,045,800).
    assert abs(total - published) <= 0.5e6, f"ViT-H/14: {total:,} parameters"


def test_original_init_chooses_vit_or_deit_initializers():
    vit = VisionTransformer(**_tiny_kwargs(original_init=True))
    deit = VisionTransformer(**_tiny_kwargs(original_init=False))
    for model, expected in ((vit, "GlorotUniform"), (deit, "TruncatedNormal")):
        block = model.get_layer("encoderblock_0")
        assert _initializer_class(block.kernel_initializer) == expected
    assert _initializer_class(vit.get_layer("embedding").kernel_initializer) == "LecunNormal"
    assert _initializer_class(deit.get_layer("embedding").kernel_initializer) == "HeUniform"


def _initializer_class(initializer):
    """The class name of a layer's kernel initializer, however the layer stores it."""
    return type(keras.initializers.get(initializer)).__name__


# Position-embedding interpolation.


def test_weights_from_32_pixels_run_at_48_with_pos_embed_shape():
    small = VisionTransformer(**_tiny_kwargs(32))
    large = VisionTransformer(**_tiny_kwargs(48, pos_embed_shape=(4, 4)))
    large.set_weights(small.get_weights())  # Same weight shapes: the grid stays 4x4.
    outputs = large(_images(48), training=False)
    assert tuple(outputs["pre_logits"].shape) == (2, 1, 1, 16)
    assert np.all(np.isfinite(ops.convert_to_numpy(outputs["pre_logits"])))
    stored = small.get_layer("posembed_input").embedding
    expected = ops.image.resize(stored, (6, 6), interpolation="bilinear")
    np.testing.assert_allclose(
        ops.convert_to_numpy(large.get_layer("posembed_input").resized_embedding((6, 6))),
        ops.convert_to_numpy(expected),
        atol=1e-6,
    )


def test_loading_weights_saved_at_another_grid_resizes_the_embedding(tmp_path):
    small = VisionTransformer(**_tiny_kwargs(32))
    path = str(tmp_path / "vit32.weights.h5")
    small.save_weights(path)
    large = VisionTransformer(**_tiny_kwargs(48))  # Its own grid is 6x6.
    large.load_weights(path)
    source = small.get_layer("posembed_input").embedding
    np.testing.assert_allclose(
        ops.convert_to_numpy(large.get_layer("posembed_input").embedding),
        ops.convert_to_numpy(ops.image.resize(source, (6, 6), interpolation="bilinear")),
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(large.get_layer("cls").token),
        ops.convert_to_numpy(small.get_layer("cls").token),
    )
    # The same as resizing on every call from the 4x4 grid.
    per_call = VisionTransformer(**_tiny_kwargs(48, pos_embed_shape=(4, 4)))
    per_call.set_weights(small.get_weights())
    images = _images(48)
    np.testing.assert_allclose(
        ops.convert_to_numpy(large(images, training=False)["pre_logits"]),
        ops.convert_to_numpy(per_call(images, training=False)["pre_logits"]),
        atol=1e-5,
    )


def test_bicubic_position_embedding_interpolation():
    layer = PositionEmbedding(grid_shape=(4, 4), interpolation="bicubic")
    grid = np.zeros((1, 6, 6, 8), np.float32)
    outputs = layer(grid)
    expected = ops.image.resize(layer.embedding, (6, 6), interpolation="bicubic")
    np.testing.assert_allclose(
        ops.convert_to_numpy(outputs), ops.convert_to_numpy(expected), atol=1e-6
    )
    # The stored grid passes unchanged.
    same = layer(np.zeros((1, 4, 4, 8), np.float32))
    np.testing.assert_array_equal(ops.convert_to_numpy(same), ops.convert_to_numpy(layer.embedding))


# Stochastic depth.


def test_stochastic_depth_is_active_only_in_training():
    keras.utils.set_random_seed(1)
    model = VisionTransformer(
        **_tiny_kwargs(init_stochastic_depth_rate=0.5, dropout_rate=0.0, pooler="gap")
    )
    rates = [model.get_layer(f"encoderblock_{i}").stochastic_depth_rate for i in range(2)]
    assert rates == [0.25, 0.5]  # Linear in depth; the last block gets the full rate.
    images = _images(batch=16)
    first = ops.convert_to_numpy(model(images, training=False)["pre_logits"])
    second = ops.convert_to_numpy(model(images, training=False)["pre_logits"])
    np.testing.assert_array_equal(first, second)
    trained = ops.convert_to_numpy(model(images, training=True)["pre_logits"])
    assert not np.allclose(first, trained, atol=1e-6)

    # With no stochastic depth (and no dropout) training computes the same as inference.
    plain = VisionTransformer(**_tiny_kwargs(dropout_rate=0.0, pooler="gap"))
    np.testing.assert_allclose(
        ops.convert_to_numpy(plain(images, training=True)["pre_logits"]),
        ops.convert_to_numpy(plain(images, training=False)["pre_logits"]),
        atol=1e-6,
    )


# Errors.


def test_unknown_model_name_is_a_config_error():
    config = backbone_configs.VisionTransformer(model_name="vit-x99")
    with pytest.raises(ConfigError, match="model_name") as error:
        build_vit(keras.layers.InputSpec(shape=[None, 224, 224, 3]), **plugins.fields_of(config))
    for accepted in ("'vit-ti16'", "'vit-b16'", "'vit-h14'", "'vit-custom'"):
        assert accepted in str(error.value)


def test_unknown_pooler_is_a_config_error():
    config = backbone_configs.VisionTransformer.from_dict({**TINY_CONFIG, "pooler": "cls"})
    with pytest.raises(ConfigError, match="pooler") as error:
        build_vit(keras.layers.InputSpec(shape=[None, 32, 32, 3]), **plugins.fields_of(config))
    assert "'token', 'gap', 'none'" in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "size", "field"),
    [
        ({"add_distillation_token": True, "pooler": "gap"}, 32, "add_distillation_token"),
        ({}, 36, "patch_size"),
        ({}, None, "pos_embed_shape"),
        ({"transformer": {"num_heads": 3}}, 32, "num_heads"),
    ],
)
def test_settings_that_cannot_be_built_are_config_errors(overrides, size, field):
    config = backbone_configs.VisionTransformer.from_dict(TINY_CONFIG)
    config.override(overrides)
    with pytest.raises(ConfigError, match=field):
        build_vit(keras.layers.InputSpec(shape=[None, size, size, 3]), **plugins.fields_of(config))


# The layers on their own.


@pytest.mark.parametrize(
    "layer",
    [
        PatchEmbedding(16, 8, kernel_regularizer=keras.regularizers.L2(1e-4)),
        PositionEmbedding(grid_shape=(4, 4), interpolation="bicubic"),
        ClassToken(initializer="truncated_normal", use_position_embedding=False),
        TransformerEncoderBlock(
            num_heads=2,
            mlp_dim=32,
            dropout_rate=0.1,
            stochastic_depth_rate=0.1,
            layer_scale_init_value=1e-5,
            return_attention_scores=True,
            kernel_regularizer=keras.regularizers.L2(1e-4),
        ),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_round_trip_through_their_config(layer):
    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    if isinstance(layer, PatchEmbedding):
        inputs = np.zeros((2, 32, 32, 3), np.float32)
    elif isinstance(layer, PositionEmbedding):
        inputs = np.zeros((2, 4, 4, 16), np.float32)
    else:
        inputs = np.zeros((2, 5, 16), np.float32)
    outputs, rebuilt_outputs = layer(inputs), rebuilt(inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    rebuilt_outputs = rebuilt_outputs if isinstance(rebuilt_outputs, tuple) else (rebuilt_outputs,)
    assert [tuple(o.shape) for o in outputs] == [tuple(o.shape) for o in rebuilt_outputs]
    assert len(rebuilt.weights) == len(layer.weights)


def test_class_token_prepends_one_token_per_example():
    layer = ClassToken(initializer="ones", use_position_embedding=False)
    outputs = ops.convert_to_numpy(layer(np.zeros((3, 4, 8), np.float32)))
    assert outputs.shape == (3, 5, 8)
    np.testing.assert_array_equal(outputs[:, 0], np.ones((3, 8)))
    np.testing.assert_array_equal(outputs[:, 1:], np.zeros((3, 4, 8)))


def test_encoder_block_rejects_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="num_heads 3"):
        TransformerEncoderBlock(num_heads=3, mlp_dim=8)(np.zeros((1, 2, 16), np.float32))
