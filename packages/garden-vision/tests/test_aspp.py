"""The `ASPP` decoder: ASPP on one backbone level, built from `configs.decoders.ASPP`."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_deeplab_layers import spp_reference
from test_fpn import randomize_weights

from garden_core import registry as registry_lib
from garden_core.config import ConfigError
from garden_core.testing import models as model_checks
from garden_vision.configs.common import NormActivation
from garden_vision.configs.decoders import ASPP as ASPPConfig
from garden_vision.configs.decoders import Decoder
from garden_vision.modeling.decoders.aspp import ASPP, build_aspp
from garden_vision.modeling.decoders.factory import build_decoder

BACKBONE_SPECS = {
    "2": (None, 16, 16, 6),
    "3": (None, 8, 8, 10),
    "4": (None, 4, 4, 12),
    "pre_logits": (None, 1, 1, 12),
}


def backbone_features(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        key: rng.normal(size=(batch, *shape[1:])).astype("float32")
        for key, shape in BACKBONE_SPECS.items()
    }


@pytest.fixture
def aspp_registered():
    """`aspp` in `garden.decoders`, in process until the entry point is installed."""
    decoders = registry_lib.registry("decoders")
    added = "aspp" not in decoders
    if added:
        decoders.register("aspp", build_aspp)
    yield
    if added:
        decoders.unregister("aspp")


def test_reads_its_level_and_returns_it_as_a_dict_or_a_tensor():
    inputs = backbone_features()
    decoder = ASPP(level=3, dilation_rates=[1, 2], num_filters=8)
    outputs = decoder(inputs, training=False)
    assert list(outputs) == ["3"]
    assert tuple(outputs["3"].shape) == (2, 8, 8, 8)
    randomize_weights(decoder)
    expected = spp_reference(decoder.aspp, inputs["3"].astype(np.float64))
    np.testing.assert_allclose(decoder(inputs)["3"], expected, rtol=1e-4, atol=1e-4)
    # Called on the level's tensor, or returning a tensor, it computes the same.
    as_tensor = ASPP(**{**decoder.get_config(), "output_tensor": True})
    as_tensor(inputs["3"])
    as_tensor.set_weights(decoder.get_weights())
    np.testing.assert_allclose(as_tensor(inputs["3"]), expected, rtol=1e-4, atol=1e-4)
    assert decoder.output_specs == {"3": (None, 8, 8, 8)}


def test_pool_kernel_size_is_in_image_pixels():
    # Model Garden scales the pooling windows down by 2**level: [32, 64] at level 4 is 2x4.
    decoder = ASPP(level=4, dilation_rates=[], pool_kernel_size=[32, 64], num_filters=4)
    assert decoder.aspp.pool_kernel_size == [2, 4]
    assert ASPP(level=4, dilation_rates=[], pool_kernel_size=[]).aspp.pool_kernel_size is None
    with pytest.raises(ConfigError, match="pool_kernel_size"):
        ASPP(level=4, dilation_rates=[], pool_kernel_size=[8, 8])


def test_builder_takes_the_config_fields_norm_activation_and_weight_decay():
    config = ASPPConfig(
        level=3,
        dilation_rates=[2, 4],
        num_filters=16,
        dropout_rate=0.1,
        use_depthwise_convolution=True,
        pool_kernel_size=[16, 16],
        spp_layer_version="v2",
    )
    norm = NormActivation(activation="swish", norm_momentum=0.9, norm_epsilon=1e-4)
    fields = {name: getattr(config, name) for name in config.as_dict()}
    decoder = build_aspp(BACKBONE_SPECS, norm, keras.regularizers.L2(1e-4), 3, 6, **fields)
    assert decoder.built
    assert decoder.output_specs == {"3": (None, 8, 8, 16)}
    spp = decoder.aspp
    assert (spp.dilation_rates, spp.pool_kernel_size, spp.dropout) == ([2, 4], [2, 2], 0.1)
    assert (spp.activation, spp.batchnorm_momentum, spp.batchnorm_epsilon) == ("swish", 0.9, 1e-4)
    assert spp.use_depthwise_convolution
    assert spp.spp_layer_version == "v2"
    assert decoder.kernel_initializer == "VarianceScaling"  # Model Garden's ASPP default.
    # 1x1 + 2 separable (depthwise and pointwise) + pooling + projection kernels.
    assert len(decoder.losses) == 1 + 2 * 2 + 1 + 1
    # The builder's defaults are the config's.
    default = build_aspp(BACKBONE_SPECS, None, level=4)
    assert default.dilation_rates == []
    assert default.num_filters == 256
    assert default.aspp.pool_kernel_size is None
    assert not default.output_tensor


def test_a_level_the_backbone_lacks_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"level.*5.*\['2', '3', '4', 'pre_logits'\]"):
        build_aspp(BACKBONE_SPECS, None, level=5)


@pytest.mark.usefixtures("aspp_registered")
def test_the_registry_builds_it_from_a_decoder_config():
    config = Decoder(type="aspp", aspp=ASPPConfig(level=4, dilation_rates=[1], num_filters=8))
    decoder = build_decoder(BACKBONE_SPECS, config)
    assert isinstance(decoder, ASPP)
    assert tuple(decoder(backbone_features())["4"].shape) == (2, 4, 4, 8)


def test_unknown_height_and_width_in_a_tf_function():
    decoder = ASPP(level=3, dilation_rates=[1, 2], num_filters=4)
    signature = {
        key: tf.TensorSpec([None, None, None, shape[-1]], tf.float32)
        for key, shape in BACKBONE_SPECS.items()
    }

    @tf.function(input_signature=[signature])
    def run(features):
        return decoder(features, training=False)

    outputs = run(backbone_features())
    assert tuple(outputs["3"].shape) == (2, 8, 8, 4)


def make_wrapped_decoder():
    """ASPP in a functional model of named inputs, for the shared checks (a SavedModel
    signature cannot name an input "4")."""
    inputs = {
        f"level_{key}": keras.Input(BACKBONE_SPECS[key][1:], name=f"level_{key}")
        for key in ("2", "4")
    }
    decoder = ASPP(
        level=4,
        dilation_rates=[1, 2],
        num_filters=8,
        pool_kernel_size=[32, 32],
        dropout_rate=0.2,
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="aspp",
    )
    outputs = decoder({key: inputs[f"level_{key}"] for key in ("2", "4")})
    return keras.Model(inputs, outputs)


def test_shared_checks_config_checkpoint_keras_file_train_step_and_mixed_precision(tmp_path):
    features = backbone_features()
    inputs = {f"level_{key}": features[key] for key in ("2", "4")}
    model = model_checks.run_model_test(
        make_wrapped_decoder,
        inputs,
        {"4": (2, 4, 4, 8)},
        tmp_path,
        mixed_precision_policy="mixed_bfloat16",
    )
    config = model.get_layer("aspp").get_config()
    assert (config["level"], config["pool_kernel_size"], config["dropout_rate"]) == (
        4,
        [32, 32],
        0.2,
    )
