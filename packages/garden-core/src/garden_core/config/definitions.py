"""The experiment configs: `ExperimentConfig(task, trainer, runtime)` and its parts.

Field names and defaults follow Model Garden's `config_definitions`, so a Model Garden
experiment YAML loads as is. Model Garden fields Garden does not implement are listed in
each class's `unsupported_fields` with the reason; YAML may carry them at their defaults,
and any other value is an error that names the field.
"""

from __future__ import annotations

import dataclasses

from garden_core.config.base import Config
from garden_core.config.optimization import OptimizationConfig

_DATA_SERVICE = "tf.data service offloading is not implemented"


@dataclasses.dataclass
class DataConfig(Config):
    """How to build one input pipeline (see Model Garden's `DataConfig`).

    `input_path` is a file pattern, a comma-separated list of patterns, a list of them, or a
    dict of named inputs for data mixing; `tfds_name` selects a TFDS dataset instead.
    """

    input_path: str | list[str] | dict[str, str | list[str]] = ""
    tfds_name: str = ""
    tfds_split: str = ""
    global_batch_size: int = 0
    is_training: bool | None = None
    drop_remainder: bool = True
    shuffle_buffer_size: int = 100
    cache: bool = False
    cycle_length: int | None = None
    block_length: int = 1
    deterministic: bool | None = None
    sharding: bool = True
    tfds_data_dir: str = ""
    tfds_as_supervised: bool = False
    tfds_skip_decoding_feature: str = ""
    seed: int | None = None
    prefetch_buffer_size: int | None = None
    # tf.data autotuning: the RAM it may use, in GiB, and its algorithm (a name of
    # `tf.data.experimental.AutotuneAlgorithm`, e.g. `GRADIENT_DESCENT`); None for defaults.
    ram_budget: int | None = None
    autotune_algorithm: str | None = None

    unsupported_fields = {
        "enable_tf_data_service": (False, _DATA_SERVICE),
        "tf_data_service_address": (None, _DATA_SERVICE),
        "tf_data_service_job_name": (None, _DATA_SERVICE),
        "enable_shared_tf_data_service_between_parallel_trainers": (False, _DATA_SERVICE),
        "apply_tf_data_service_before_batching": (False, _DATA_SERVICE),
        "trainer_id": (None, _DATA_SERVICE),
    }


@dataclasses.dataclass
class RuntimeConfig(Config):
    """Where and how the experiment runs: distribution, devices, precision."""

    distribution_strategy: str = "mirrored"
    enable_xla: bool = False
    gpu_thread_mode: str | None = None
    dataset_num_private_threads: int | None = None
    per_gpu_thread_count: int = 0
    tpu: str | None = None
    num_gpus: int = 0
    worker_hosts: str | None = None
    task_index: int = -1
    all_reduce_alg: str | None = None
    num_packs: int = 1
    mixed_precision_dtype: str | None = None
    loss_scale: str | float | None = None
    run_eagerly: bool = False
    batchnorm_spatial_persistent: bool = False
    # Garden: seeds Python, NumPy, TensorFlow and Keras before the model is built, so model
    # initialization and data shuffling repeat exactly (None: unseeded).
    seed: int | None = None
    # Garden: makes TensorFlow ops deterministic (`enable_op_determinism`), so that a run,
    # or a run killed and resumed, repeats bit for bit; slower on GPUs. Needs `seed`.
    deterministic_ops: bool = False

    unsupported_fields = {
        "tpu_enable_xla_dynamic_padder": (None, "TPU XLA padder tuning is not exposed"),
        "num_cores_per_replica": (1, "model parallelism across TPU cores is not implemented"),
        "default_shard_dim": (-1, "model parallelism across TPU cores is not implemented"),
        "use_tpu_mp_strategy": (False, "model parallelism across TPU cores is not implemented"),
    }


@dataclasses.dataclass
class TrainerConfig(Config):
    """The training loop: steps, intervals, checkpoints, best-checkpoint export, recovery."""

    optimizer_config: OptimizationConfig = dataclasses.field(default_factory=OptimizationConfig)
    # Orbit settings.
    train_tf_while_loop: bool = True
    train_tf_function: bool = True
    eval_tf_function: bool = True
    eval_tf_while_loop: bool = False
    allow_tpu_summary: bool = False
    # Intervals.
    steps_per_loop: int = 1000
    summary_interval: int = 1000
    checkpoint_interval: int = 1000
    # Checkpoint manager.
    max_to_keep: int = 5
    continuous_eval_timeout: int = 60 * 60
    # Train and eval routines; -1 validation steps evaluate the whole dataset.
    train_steps: int = 0
    validation_steps: int = -1
    validation_interval: int = 1000
    # Best checkpoint export.
    best_checkpoint_export_subdir: str = ""
    best_checkpoint_eval_metric: str = ""
    best_checkpoint_metric_comp: str = "higher"
    # Loss blow-up recovery.
    loss_upper_bound: float = 1e6
    recovery_begin_steps: int = 0
    recovery_max_trials: int = 0
    validation_summary_subdir: str = "validation"
    preemption_on_demand_checkpoint: bool = True

    restrictions = (
        "steps_per_loop > 0",
        "validation_steps != 0",
        "max_to_keep >= 0",
    )


@dataclasses.dataclass
class TaskConfig(Config):
    """What the task trains: its model and data. Tasks subclass it with a typed `model`."""

    init_checkpoint: str = ""
    model: Config | None = None
    train_data: DataConfig = dataclasses.field(default_factory=DataConfig)
    validation_data: DataConfig = dataclasses.field(default_factory=DataConfig)
    name: str | None = None
    allow_image_summary: bool = False

    unsupported_fields = {
        "differential_privacy_config": (None, "differentially private training is not offered"),
    }


@dataclasses.dataclass
class ExperimentConfig(Config):
    """The top-level config of an experiment."""

    task: TaskConfig = dataclasses.field(default_factory=TaskConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
