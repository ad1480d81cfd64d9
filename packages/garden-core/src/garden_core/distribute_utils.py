"""Distribution strategies and numeric precision from `RuntimeConfig`.

`runtime.distribution_strategy` names a `tf.distribute` strategy:

- `off`: the default strategy (no distribution).
- `one_device`: `OneDeviceStrategy` on GPU 0 when `num_gpus > 0`, else on the CPU.
- `mirrored`: `MirroredStrategy` over `num_gpus` GPUs; with `num_gpus: 0`, over every
  visible GPU, or else over every logical CPU.
- `multi_worker_mirrored`: `MultiWorkerMirroredStrategy`; the cluster comes from `TF_CONFIG`.
- `tpu`: `TPUStrategy` on `runtime.tpu` (a name or address; "" for a local TPU).

`configure_runtime` applies the rest of `RuntimeConfig` (XLA, GPU threads, determinism, the
cluster from `worker_hosts`) and must run before the strategy is made.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from garden_core.config import ConfigError, RuntimeConfig

STRATEGIES = ("off", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
_ALL_REDUCE = {
    "mirrored": {"nccl": "NcclAllReduce", "hierarchical_copy": "HierarchicalCopyAllReduce"},
    "multi_worker_mirrored": {"ring": "RING", "nccl": "NCCL"},
}


def _cross_device_ops(all_reduce_alg: str | None, num_packs: int):
    if all_reduce_alg is None:
        return None
    choices = _ALL_REDUCE["mirrored"]
    if all_reduce_alg not in choices:
        raise ConfigError(
            f"`runtime.all_reduce_alg` is {all_reduce_alg!r}; with `mirrored` choose one of "
            + ", ".join(choices)
        )
    return getattr(tf.distribute, choices[all_reduce_alg])(num_packs=num_packs)


def _communication(all_reduce_alg: str | None) -> tf.distribute.experimental.CommunicationOptions:
    if all_reduce_alg is None:
        implementation = tf.distribute.experimental.CommunicationImplementation.AUTO
    else:
        choices = _ALL_REDUCE["multi_worker_mirrored"]
        if all_reduce_alg not in choices:
            raise ConfigError(
                f"`runtime.all_reduce_alg` is {all_reduce_alg!r}; with "
                "`multi_worker_mirrored` choose one of " + ", ".join(choices)
            )
        implementation = getattr(
            tf.distribute.experimental.CommunicationImplementation, choices[all_reduce_alg]
        )
    return tf.distribute.experimental.CommunicationOptions(implementation=implementation)


def _tf_config_workers() -> int:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error.msg})") from None
    cluster = config.get("cluster", {}) if isinstance(config, dict) else {}
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    address = tpu or ""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        where = f"at {address!r}" if address else "attached to this machine"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"`runtime.distribution_strategy` is 'tpu' but no TPU is reachable {where} "
            f"({reason}); set `runtime.tpu` to the TPU's name or address, or choose another "
            "strategy"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def get_distribution_strategy(
    distribution_strategy: str = "mirrored",
    num_gpus: int = 0,
    all_reduce_alg: str | None = None,
    num_packs: int = 1,
    tpu_address: str | None = None,
) -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy named `distribution_strategy` (see the table above).

    Args:
      distribution_strategy: One of `STRATEGIES` (case-insensitive).
      num_gpus: GPUs to use (0: see the table).
      all_reduce_alg: `mirrored`: `nccl` or `hierarchical_copy`; `multi_worker_mirrored`:
        `ring` or `nccl`; None lets TensorFlow choose.
      num_packs: Gradient packing for `mirrored` all-reduce.
      tpu_address: The TPU to use with `tpu`.

    Raises:
      ConfigError: For an unknown strategy or option, more GPUs than are visible, or `tpu`
        when no TPU can be reached.
    """
    name = (distribution_strategy or "off").lower()
    if name not in STRATEGIES:
        raise ConfigError(
            f"`runtime.distribution_strategy` is {distribution_strategy!r}; choose one of "
            + ", ".join(STRATEGIES)
        )
    if name == "multi_worker_mirrored":
        # Listing logical devices initialises TensorFlow's runtime, after which
        # MultiWorkerMirroredStrategy can no longer set up its collective ops ("Collective
        # ops must be configured at program startup"); physical devices can be listed
        # without initialising it.
        gpus = tf.config.list_physical_devices("GPU")
    else:
        gpus = tf.config.list_logical_devices("GPU")
    if num_gpus < 0 or num_gpus > len(gpus):
        raise ConfigError(
            f"`runtime.num_gpus` is {num_gpus} but TensorFlow sees {len(gpus)} GPU(s)"
        )
    if name == "off":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if num_gpus else "/cpu:0")
    if name == "mirrored":
        if num_gpus:
            devices = [device.name for device in gpus[:num_gpus]]
        elif gpus:
            devices = [device.name for device in gpus]
        else:
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            devices=devices, cross_device_ops=_cross_device_ops(all_reduce_alg, num_packs)
        )
    if name == "multi_worker_mirrored":
        if _tf_config_workers() == 0:
            raise ConfigError(
                "`runtime.distribution_strategy` is 'multi_worker_mirrored' but TF_CONFIG "
                "names no cluster; set TF_CONFIG to "
                '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                '"index": i}} on each worker'
            )
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=_communication(all_reduce_alg)
        )
    return _tpu_strategy(tpu_address)


def configure_runtime(runtime: RuntimeConfig) -> None:
    """Applies `runtime`'s process-wide settings; call it before making the strategy.

    - `worker_hosts` (comma-separated `host:port`) with `task_index` write `TF_CONFIG` for
      `multi_worker_mirrored` when it is not set already (a set `TF_CONFIG` wins).
    - `enable_xla` turns on XLA auto-clustering (`tf.config.optimizer.set_jit`).
    - `gpu_thread_mode` (`gpu_private`, `gpu_shared`) and `per_gpu_thread_count` set
      `TF_GPU_THREAD_MODE` / `TF_GPU_THREAD_COUNT`; `batchnorm_spatial_persistent` sets
      `TF_USE_CUDNN_BATCHNORM_SPATIAL_PERSISTENT`. These take effect only if no GPU has been
      initialised yet in this process.
    - `run_eagerly` runs every `tf.function` eagerly (for debugging).
    - `deterministic_ops` calls `tf.config.experimental.enable_op_determinism`.
    (`dataset_num_private_threads` is applied by the `Trainer` to its datasets.)

    Raises:
      ConfigError: For a bad `worker_hosts`/`task_index` pair or `gpu_thread_mode`, or
        `deterministic_ops` without `seed`.
    """
    if runtime.worker_hosts and not os.environ.get("TF_CONFIG"):
        hosts = [host.strip() for host in runtime.worker_hosts.split(",") if host.strip()]
        if not 0 <= runtime.task_index < len(hosts):
            raise ConfigError(
                f"`runtime.task_index` is {runtime.task_index}, but `runtime.worker_hosts` "
                f"names {len(hosts)} worker(s); give this worker's index in that list"
            )
        os.environ["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": runtime.task_index}}
        )
    if runtime.gpu_thread_mode is not None:
        if runtime.gpu_thread_mode not in ("global", "gpu_private", "gpu_shared"):
            raise ConfigError(
                f"`runtime.gpu_thread_mode` is {runtime.gpu_thread_mode!r}; choose global, "
                "gpu_private or gpu_shared"
            )
        os.environ["TF_GPU_THREAD_MODE"] = runtime.gpu_thread_mode
        if runtime.per_gpu_thread_count > 0:
            os.environ["TF_GPU_THREAD_COUNT"] = str(runtime.per_gpu_thread_count)
    if runtime.batchnorm_spatial_persistent:
        os.environ["TF_USE_CUDNN_BATCHNORM_SPATIAL_PERSISTENT"] = "1"
    if runtime.enable_xla:
        tf.config.optimizer.set_jit(True)
    if runtime.run_eagerly:
        tf.config.run_functions_eagerly(True)
    if runtime.deterministic_ops:
        if runtime.seed is None:
            raise ConfigError(
                "`runtime.deterministic_ops` is true but `runtime.seed` is null; deterministic "
                "ops need seeded random ops: set runtime.seed"
            )
        tf.config.experimental.enable_op_determinism()


def strategy_from_runtime(runtime: RuntimeConfig) -> tf.distribute.Strategy:
    """Returns the strategy `runtime` describes (see `get_distribution_strategy`)."""
    return get_distribution_strategy(
        distribution_strategy=runtime.distribution_strategy,
        num_gpus=runtime.num_gpus,
        all_reduce_alg=runtime.all_reduce_alg,
        num_packs=runtime.num_packs,
        tpu_address=runtime.tpu,
    )


_PRECISION_POLICIES = {
    None: "float32",
    "float32": "float32",
    "float16": "mixed_float16",
    "bfloat16": "mixed_bfloat16",
}


def set_mixed_precision_policy(dtype: str | None) -> str:
    """Sets Keras' global dtype policy from `runtime.mixed_precision_dtype`; returns its name.

    `float16` computes in float16 with float32 variables (train with loss scaling: see
    `Task.create_optimizer`); `bfloat16` computes in bfloat16 with float32 variables; None or
    `float32` computes in float32. Models built afterwards use the policy.

    Raises:
      ConfigError: For any other dtype.
    """
    if dtype not in _PRECISION_POLICIES:
        raise ConfigError(
            f"`runtime.mixed_precision_dtype` is {dtype!r}; choose float16, bfloat16, "
            "float32 or null"
        )
    policy = _PRECISION_POLICIES[dtype]
    keras.mixed_precision.set_global_policy(policy)
    return policy
