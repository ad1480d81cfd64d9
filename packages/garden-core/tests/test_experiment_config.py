"""ExperimentConfig and OptimizationConfig keep Model Garden's names, types and defaults."""

import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from garden_core.config import ConfigError, ExperimentConfig, OptimizationConfig

# What a Model Garden experiment YAML looks like: its runtime/task/trainer layout and field
# names, including fields Garden does not implement, left at their defaults.
MODEL_GARDEN_YAML = textwrap.dedent(
    """
    runtime:
      distribution_strategy: 'mirrored'
      mixed_precision_dtype: 'bfloat16'
      loss_scale: 'dynamic'
      num_gpus: 2
      enable_xla: false
      tpu_enable_xla_dynamic_padder: null
      num_cores_per_replica: 1
      default_shard_dim: -1
    task:
      init_checkpoint: ''
      differential_privacy_config: null
      train_data:
        input_path: 'gs://bucket/train*'
        global_batch_size: 4096
        is_training: true
        shuffle_buffer_size: 10000
        cycle_length: 10
        enable_tf_data_service: false
        tf_data_service_address: null
      validation_data:
        input_path: ['gs://bucket/valid-0*', 'gs://bucket/valid-1*']
        global_batch_size: 4096
        is_training: false
        drop_remainder: false
    trainer:
      train_steps: 112590
      validation_steps: 13
      validation_interval: 1251
      steps_per_loop: 1251
      summary_interval: 1251
      checkpoint_interval: 1251
      best_checkpoint_export_subdir: 'best_ckpt'
      best_checkpoint_eval_metric: 'accuracy'
      best_checkpoint_metric_comp: 'higher'
      optimizer_config:
        optimizer:
          type: 'adamw'
          adamw:
            weight_decay_rate: 0.05
            exclude_from_weight_decay: ['.*(gamma|beta|bias).*']
            gradient_clip_norm: 1.0
          slide:
            beta_1: 0.9
        ema:
          average_decay: 0.9999
          trainable_weights_only: false
        learning_rate:
          type: 'cosine'
          cosine:
            initial_learning_rate: 1.6
            decay_steps: 112590
        warmup:
          type: 'linear'
          linear:
            warmup_steps: 6255
    """
)


def test_model_garden_yaml_loads_with_its_values(tmp_path):
    path = tmp_path / "resnet.yaml"
    path.write_text(MODEL_GARDEN_YAML)
    config = ExperimentConfig.from_yaml(str(path))
    assert config.runtime.distribution_strategy == "mirrored"
    assert config.runtime.mixed_precision_dtype == "bfloat16"
    assert config.runtime.loss_scale == "dynamic"
    assert config.task.train_data.input_path == "gs://bucket/train*"
    assert config.task.validation_data.input_path == [
        "gs://bucket/valid-0*",
        "gs://bucket/valid-1*",
    ]
    assert config.task.train_data.global_batch_size == 4096
    assert config.trainer.train_steps == 112590
    assert config.trainer.best_checkpoint_eval_metric == "accuracy"
    optimization = config.trainer.optimizer_config
    assert optimization.optimizer.type == "adamw"
    assert optimization.optimizer.get().weight_decay_rate == 0.05
    assert optimization.optimizer.get().exclude_from_weight_decay == [".*(gamma|beta|bias).*"]
    assert optimization.ema.average_decay == 0.9999
    assert optimization.learning_rate.get().initial_learning_rate == 1.6
    assert optimization.warmup.get().warmup_steps == 6255
    # Defaults the file does not mention are Model Garden's.
    assert config.trainer.max_to_keep == 5
    assert config.task.train_data.block_length == 1
    assert optimization.optimizer.adamw.beta_2 == 0.999
    config.validate()
    assert ExperimentConfig.from_dict(yaml.safe_load(config.as_yaml())) == config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.train_data.enable_tf_data_service=true", "`task.train_data.enable_tf_data_service`"),
        ("runtime.num_cores_per_replica=8", "model parallelism"),
        ("task.differential_privacy_config.clipping_norm=1.0", "differentially private"),
        ("trainer.optimizer_config.optimizer.type=slide", "does not support this Model Garden"),
        ("trainer.optimizer_config.optimizer.type=adam_experimental", "transition alias"),
    ],
)
def test_unsupported_model_garden_fields_are_rejected_not_ignored(override, message):
    from garden_core.config import parse_override_string

    with pytest.raises(ConfigError, match=message):
        ExperimentConfig().override(parse_override_string(override))


@pytest.mark.parametrize(
    ("section", "names"),
    [
        (
            "optimizer",
            {"sgd", "adam", "adamw", "lamb", "lars", "rmsprop", "adagrad", "adafactor", "lion"},
        ),
        (
            "learning_rate",
            {
                "constant",
                "stepwise",
                "exponential",
                "polynomial",
                "cosine",
                "power",
                "power_linear",
                "power_with_offset",
                "step_cosine_with_offset",
            },
        ),
        ("warmup", {"linear", "polynomial"}),
    ],
)
def test_optimization_one_ofs_offer_model_garden_type_names(section, names):
    config = OptimizationConfig()
    assert set(getattr(config, section).branches()) == names
    assert getattr(config, section).type is None
    assert config.ema is None


def test_trainer_restrictions_catch_impossible_values():
    config = ExperimentConfig()
    config.override({"trainer": {"validation_steps": 0}})
    with pytest.raises(ConfigError, match="validation_steps != 0"):
        config.validate()


_FIELD_OVERRIDES = st.fixed_dictionaries(
    {},
    optional={
        "trainer.train_steps": st.integers(0, 10**7),
        "trainer.optimizer_config.optimizer.type": st.sampled_from(
            ["sgd", "adam", "adamw", "lamb", "lars", "rmsprop", "adagrad", "adafactor", "lion"]
        ),
        "trainer.optimizer_config.learning_rate.type": st.sampled_from(
            ["constant", "stepwise", "cosine", "polynomial", "power_linear"]
        ),
        "trainer.optimizer_config.learning_rate.stepwise.boundaries": st.lists(
            st.integers(0, 10**6), max_size=4
        ),
        "trainer.optimizer_config.ema": st.fixed_dictionaries(
            {"average_decay": st.floats(0, 1), "start_step": st.integers(0, 100)}
        ),
        "task.train_data.input_path": st.one_of(
            st.text(max_size=10), st.lists(st.text(max_size=10), max_size=3)
        ),
        "task.train_data.seed": st.none() | st.integers(0, 2**31),
        "runtime.loss_scale": st.none() | st.sampled_from(["dynamic"]) | st.floats(1, 2**15),
        "runtime.mixed_precision_dtype": st.sampled_from([None, "float16", "bfloat16"]),
    },
)


@settings(max_examples=300, deadline=None)
@given(_FIELD_OVERRIDES)
def test_overridden_experiment_configs_round_trip_through_yaml(overrides):
    config = ExperimentConfig()
    config.override(overrides)
    assert ExperimentConfig.from_dict(yaml.safe_load(config.as_yaml())) == config
