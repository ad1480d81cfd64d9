"""`EncoderScaffold`: a BERT-shaped encoder whose embedding and layers are pluggable.

The scaffold keeps BERT's structure (embed, build the attention mask, run `N` hidden layers,
pool the first token) and lets each piece be replaced: `embedding_cls` turns the inputs
into `(embeddings, attention_mask)`, `hidden_cls` is the layer class (or instance, or one
per layer), `mask_cls` builds the attention mask for the default embedding. Research
encoders (BigBird, kernel attention, layer reuse) are a `hidden_cls` and a config away.
Argument names and behaviour follow Model Garden's `EncoderScaffold`.

Classes and objects in `embedding_cfg` / `hidden_cfg` / `mask_cfg`, and `hidden_cls`
itself, are written by `get_config` in Keras' serialized form; to rebuild a scaffold from
its config, custom classes must be registered with
`keras.saving.register_keras_serializable`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import keras

from garden_nlp.modeling.layers.on_device_embedding import OnDeviceEmbedding
from garden_nlp.modeling.layers.position_embedding import PositionEmbedding
from garden_nlp.modeling.layers.self_attention_mask import SelfAttentionMask
from garden_nlp.modeling.layers.transformer_encoder_block import TransformerEncoderBlock
from garden_nlp.modeling.networks.bert_encoder import truncated_normal, unpack_encoder_inputs

_EMBEDDING_KEYS = (
    "vocab_size",
    "type_vocab_size",
    "hidden_size",
    "max_seq_length",
    "initializer",
    "dropout_rate",
)
_OPTIONAL_EMBEDDING_KEYS = ("seq_length",)
# Model Garden's `layers.Transformer` argument names, accepted for `TransformerEncoderBlock`.
_LEGACY_BLOCK_ARGS = {
    "intermediate_size": "inner_dim",
    "intermediate_activation": "inner_activation",
    "dropout_rate": "output_dropout",
    "attention_dropout_rate": "attention_dropout",
}
_CLASS_KEY = "registered_class"


def _serialize(value: Any) -> Any:
    """A config value in plain, Keras-deserializable form (classes by registered name)."""
    if inspect.isclass(value):
        return {_CLASS_KEY: keras.saving.get_registered_name(value)}
    if isinstance(value, dict):
        return {key: _serialize(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialize(item) for item in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return keras.saving.serialize_keras_object(value)


def _deserialize(value: Any, where: str) -> Any:
    """Inverts `_serialize`."""
    if isinstance(value, dict):
        if set(value) == {_CLASS_KEY}:
            cls = keras.saving.get_registered_object(value[_CLASS_KEY])
            if cls is None:
                raise ValueError(
                    f"EncoderScaffold config `{where}` names class {value[_CLASS_KEY]!r}, which "
                    "is not registered: decorate it with "
                    "`keras.saving.register_keras_serializable`"
                )
            return cls
        if "class_name" in value and "config" in value:
            return keras.saving.deserialize_keras_object(value)
        return {key: _deserialize(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_deserialize(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


@keras.saving.register_keras_serializable(package="garden_nlp")
class EncoderScaffold(keras.layers.Layer):
    """A Transformer encoder with pluggable embedding, hidden-layer and mask classes.

    Called on the encoder-inputs dict (`input_word_ids`, `input_mask`, `input_type_ids`,
    or whatever a custom embedding takes), returns with `dict_outputs=True` a dict with
    `sequence_output`, `pooled_output` and `encoder_outputs`; otherwise Model Garden's list
    `[sequence_output, pooled_output]`, or `[encoder_outputs, pooled_output]` with
    `return_all_layer_outputs`.

    Example (a BERT encoder with a custom layer class):

        encoder = EncoderScaffold(
            pooled_output_dim=768,
            embedding_cfg=dict(vocab_size=30522, type_vocab_size=2, hidden_size=768,
                               max_seq_length=512, dropout_rate=0.1,
                               initializer=keras.initializers.TruncatedNormal(0.02)),
            hidden_cls=MyBlock, hidden_cfg=dict(num_heads=12),
            num_hidden_instances=12, dict_outputs=True)

    Args:
      pooled_output_dim: Width of the pooled output (the tanh layer over the first token).
      pooler_layer_initializer: Initializer of the pooler; None is
        `TruncatedNormal(stddev=0.02)`.
      embedding_cls: A layer class or instance that maps the inputs to `(embeddings
        [batch, seq, hidden], attention_mask [batch, seq, seq])`. None uses BERT's
        embedding (word + position + type, layer norm, dropout), configured by
        `embedding_cfg`.
      embedding_cfg: Keyword arguments of `embedding_cls` when it is a class. For the
        default embedding: `vocab_size`, `type_vocab_size`, `hidden_size`,
        `max_seq_length`, `initializer`, `dropout_rate` and optionally `seq_length` (the
        one input length accepted).
      embedding_data: The word-embedding table of a custom embedding, returned by
        `get_embedding_table` (needed for masked-LM pretraining).
      num_hidden_instances: Number of hidden layers.
      hidden_cls: The hidden layer: a class (instantiated `num_hidden_instances` times with
        `hidden_cfg`), an instance (applied `num_hidden_instances` times, sharing its
        weights), or a list of `num_hidden_instances` classes and/or instances. Each is
        called on `[data, attention_mask]` (plus the recurrent state with `recursive`).
      hidden_cfg: Keyword arguments of `hidden_cls`. For `TransformerEncoderBlock`, Model
        Garden's `Transformer` names (`intermediate_size`, `intermediate_activation`,
        `dropout_rate`, `attention_dropout_rate`) are accepted too.
      mask_cls: Class or instance that builds the attention mask from `(embeddings,
        input_mask)`, for the default embedding.
      mask_cfg: Keyword arguments of `mask_cls` when it is a class.
      layer_norm_before_pooling: Normalize the last layer's output (before pooling and in
        the outputs); useful with pre-norm layers.
      return_all_layer_outputs: With list outputs, return every layer's output instead of
        the last one.
      dict_outputs: Return a dict instead of a list.
      layer_idx_as_attention_seed: Set `hidden_cfg["attention_cfg"]["seed"]` to the layer
        index for each layer.
      feed_layer_idx: Pass `layer_idx=i` to each hidden class.
      recursive: Each hidden layer returns `(data, state)` and receives the previous state
        as a third input (None for the first layer).
      **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Attributes:
      embedding_network: The custom embedding layer, or None.
      word_embeddings, position_embedding, type_embeddings, embedding_norm: The default
        embedding's layers (None with a custom embedding).
      hidden_layers: The hidden layers, in call order.
      output_layer_norm: The layer norm before pooling, or None.
      pooler_layer: The pooler `Dense(pooled_output_dim, "tanh")`.
    """

    def __init__(
        self,
        pooled_output_dim: int,
        pooler_layer_initializer: Any = None,
        embedding_cls: Any = None,
        embedding_cfg: dict[str, Any] | None = None,
        embedding_data: Any = None,
        num_hidden_instances: int = 1,
        hidden_cls: Any = TransformerEncoderBlock,
        hidden_cfg: dict[str, Any] | None = None,
        mask_cls: Any = SelfAttentionMask,
        mask_cfg: dict[str, Any] | None = None,
        layer_norm_before_pooling: bool = False,
        return_all_layer_outputs: bool = False,
        dict_outputs: bool = False,
        layer_idx_as_attention_seed: bool = False,
        feed_layer_idx: bool = False,
        recursive: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if int(num_hidden_instances) < 1:
            raise ValueError(
                f"EncoderScaffold `{self.name}` needs num_hidden_instances >= 1, got "
                f"{num_hidden_instances}"
            )
        if isinstance(hidden_cls, (list, tuple)) and len(hidden_cls) != num_hidden_instances:
            raise ValueError(
                f"EncoderScaffold `{self.name}`: hidden_cls lists {len(hidden_cls)} layers but "
                f"num_hidden_instances is {num_hidden_instances}"
            )
        self.pooled_output_dim = int(pooled_output_dim)
        self.pooler_layer_initializer = truncated_normal(pooler_layer_initializer)
        self.num_hidden_instances = int(num_hidden_instances)
        self.layer_norm_before_pooling = bool(layer_norm_before_pooling)
        self.return_all_layer_outputs = bool(return_all_layer_outputs)
        self.dict_outputs = bool(dict_outputs)
        self.layer_idx_as_attention_seed = bool(layer_idx_as_attention_seed)
        self.feed_layer_idx = bool(feed_layer_idx)
        self.recursive = bool(recursive)
        self._embedding_cfg = dict(embedding_cfg or {})
        self._hidden_cls = list(hidden_cls) if isinstance(hidden_cls, tuple) else hidden_cls
        self._hidden_cfg = dict(hidden_cfg or {})
        self._mask_cls = mask_cls
        self._mask_cfg = dict(mask_cfg or {})
        self._embedding_data = embedding_data
        policy = self.dtype_policy

        self.embedding_network = None
        self.word_embeddings = self.position_embedding = None
        self.type_embeddings = self.embedding_norm = self.mask_layer = None
        if embedding_cls is not None:
            if inspect.isclass(embedding_cls):
                embedding_cls = embedding_cls(**self._embedding_cfg)
            self.embedding_network = embedding_cls
        else:
            self._build_default_embedding(policy)

        self._hidden_layer_names = []
        for i in range(self.num_hidden_instances):
            layer_cls = self._hidden_cls[i] if isinstance(self._hidden_cls, list) else hidden_cls
            layer = layer_cls
            if inspect.isclass(layer_cls):
                try:
                    layer = layer_cls(**self._layer_cfg(layer_cls, i))
                except TypeError as error:
                    raise ValueError(
                        f"EncoderScaffold `{self.name}`: hidden_cfg does not fit "
                        f"{layer_cls.__name__}: {error}"
                    ) from error
            # One attribute per layer: `tf.train.Checkpoint` does not see into lists.
            setattr(self, f"hidden_layer_{i}", layer)
            self._hidden_layer_names.append(f"hidden_layer_{i}")

        self.output_layer_norm = None
        if self.layer_norm_before_pooling:
            self.output_layer_norm = keras.layers.LayerNormalization(
                axis=-1, epsilon=1e-12, dtype=policy, name="final_layer_norm"
            )
        self.pooler_layer = keras.layers.Dense(
            self.pooled_output_dim,
            activation="tanh",
            kernel_initializer=keras.initializers.get(self.pooler_layer_initializer),
            dtype=policy,
            name="cls_transform",
        )

    def _build_default_embedding(self, policy) -> None:
        cfg = self._embedding_cfg
        missing = [key for key in _EMBEDDING_KEYS if key not in cfg]
        unknown = sorted(set(cfg) - set(_EMBEDDING_KEYS) - set(_OPTIONAL_EMBEDDING_KEYS))
        if missing or unknown:
            raise ValueError(
                f"EncoderScaffold `{self.name}`: the default embedding's embedding_cfg "
                + (f"lacks {', '.join(missing)}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"has unknown keys {', '.join(unknown)}" if unknown else "")
                + f" (it takes {', '.join(_EMBEDDING_KEYS + _OPTIONAL_EMBEDDING_KEYS)})"
            )
        initializer = truncated_normal(cfg["initializer"])
        width = int(cfg["hidden_size"])
        self.word_embeddings = OnDeviceEmbedding(
            vocab_size=int(cfg["vocab_size"]),
            embedding_width=width,
            initializer=keras.initializers.get(initializer),
            dtype=policy,
            name="word_embeddings",
        )
        with keras.name_scope(self.name):
            self.word_embeddings.build((None, None))  # Heads may share the table.
        self.position_embedding = PositionEmbedding(
            max_length=int(cfg["max_seq_length"]),
            initializer=keras.initializers.get(initializer),
            dtype=policy,
            name="position_embedding",
        )
        self.type_embeddings = OnDeviceEmbedding(
            vocab_size=int(cfg["type_vocab_size"]),
            embedding_width=width,
            initializer=keras.initializers.get(initializer),
            use_one_hot=True,
            dtype=policy,
            name="type_embeddings",
        )
        self.embedding_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=1e-12, dtype=policy, name="embeddings_layer_norm"
        )
        self.embedding_dropout = keras.layers.Dropout(
            float(cfg["dropout_rate"]), dtype=policy, name="embeddings_dropout"
        )
        mask_cls = self._mask_cls
        self.mask_layer = mask_cls(**self._mask_cfg) if inspect.isclass(mask_cls) else mask_cls

    def _layer_cfg(self, layer_cls: type, index: int) -> dict[str, Any]:
        """The keyword arguments of hidden layer `index`."""
        cfg = copy.deepcopy(self._hidden_cfg)
        if issubclass(layer_cls, TransformerEncoderBlock):
            for legacy, name in _LEGACY_BLOCK_ARGS.items():
                if legacy in cfg:
                    if name in cfg:
                        raise ValueError(
                            f"EncoderScaffold `{self.name}`: hidden_cfg sets both {legacy!r} "
                            f"and {name!r}"
                        )
                    cfg[name] = cfg.pop(legacy)
            cfg.setdefault("dtype", self.dtype_policy)
            cfg.setdefault("name", f"transformer_layer_{index}")
        if self.layer_idx_as_attention_seed and isinstance(cfg.get("attention_cfg"), dict):
            cfg["attention_cfg"]["seed"] = index
        if self.feed_layer_idx:
            cfg["layer_idx"] = index
        return cfg

    @property
    def hidden_layers(self) -> list[keras.layers.Layer]:
        """The hidden layers, in call order (an instance appears once per application)."""
        return [getattr(self, name) for name in self._hidden_layer_names]

    @property
    def hidden_size(self) -> int | None:
        """The width of the sequence output (None while it is unknown: before the first call
        of a scaffold whose custom embedding has no `hidden_size` in `embedding_cfg`)."""
        if "hidden_size" in self._embedding_cfg:
            return int(self._embedding_cfg["hidden_size"])
        if self.pooler_layer.built:
            return int(self.pooler_layer.kernel.shape[0])
        return None

    def get_embedding_table(self):
        """The word-embedding table (`embedding_data` for a custom embedding).

        Raises:
          ValueError: For a custom embedding given without `embedding_data`.
        """
        if self.embedding_network is None:
            return self.word_embeddings.embeddings
        if self._embedding_data is None:
            raise ValueError(
                f"EncoderScaffold `{self.name}` has a custom embedding but no embedding_data: "
                "pass the word-embedding table as `embedding_data`"
            )
        return self._embedding_data

    def get_embedding_layer(self) -> keras.layers.Layer:
        """The word-embedding layer, or the custom embedding network."""
        return self.embedding_network or self.word_embeddings

    def build(self, input_shape):
        # The pluggable parts build themselves when first called: trace one symbolic call.
        inputs = keras.tree.map_shape_structure(
            lambda shape: keras.KerasTensor(shape, dtype="int32"), input_shape
        )
        self.compute_output_spec(inputs)

    def _embed(self, inputs, training):
        if self.embedding_network is not None:
            return self.embedding_network(inputs, training=training)
        word_ids, mask, type_ids = unpack_encoder_inputs(inputs, f"EncoderScaffold `{self.name}`")
        seq_length = self._embedding_cfg.get("seq_length")
        if seq_length is not None and word_ids.shape[1] not in (None, seq_length):
            raise ValueError(
                f"EncoderScaffold `{self.name}` was configured for seq_length={seq_length}, got "
                f"inputs of length {word_ids.shape[1]}"
            )
        word_embeddings = self.word_embeddings(word_ids)
        embeddings = (
            word_embeddings
            + self.position_embedding(word_embeddings)
            + self.type_embeddings(type_ids)
        )
        embeddings = self.embedding_norm(embeddings)
        embeddings = self.embedding_dropout(embeddings, training=training)
        return embeddings, self.mask_layer(embeddings, mask)

    def call(self, inputs, training=None):
        data, attention_mask = self._embed(inputs, training)
        layer_outputs = []
        state = None
        for layer in self.hidden_layers:
            if self.recursive:
                data, state = layer([data, attention_mask, state], training=training)
            else:
                data = layer([data, attention_mask], training=training)
            layer_outputs.append(data)
        if self.output_layer_norm is not None:
            layer_outputs[-1] = self.output_layer_norm(layer_outputs[-1])
        sequence_output = layer_outputs[-1]
        pooled_output = self.pooler_layer(sequence_output[:, 0, :])
        if self.dict_outputs:
            return {
                "sequence_output": sequence_output,
                "pooled_output": pooled_output,
                "encoder_outputs": layer_outputs,
            }
        if self.return_all_layer_outputs:
            return [layer_outputs, pooled_output]
        return [sequence_output, pooled_output]

    def get_config(self) -> dict[str, Any]:
        if isinstance(self._hidden_cls, list):
            hidden_cls = [_serialize(item) for item in self._hidden_cls]
        else:
            hidden_cls = _serialize(self._hidden_cls)
        return {
            **super().get_config(),
            "pooled_output_dim": self.pooled_output_dim,
            "pooler_layer_initializer": self.pooler_layer_initializer,
            "embedding_cls": (
                None if self.embedding_network is None else _serialize(self.embedding_network)
            ),
            "embedding_cfg": _serialize(self._embedding_cfg),
            "num_hidden_instances": self.num_hidden_instances,
            "hidden_cls": hidden_cls,
            "hidden_cfg": _serialize(self._hidden_cfg),
            "mask_cls": _serialize(self._mask_cls),
            "mask_cfg": _serialize(self._mask_cfg),
            "layer_norm_before_pooling": self.layer_norm_before_pooling,
            "return_all_layer_outputs": self.return_all_layer_outputs,
            "dict_outputs": self.dict_outputs,
            "layer_idx_as_attention_seed": self.layer_idx_as_attention_seed,
            "feed_layer_idx": self.feed_layer_idx,
            "recursive": self.recursive,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncoderScaffold:
        """Rebuilds the scaffold; instances in the config come back as new copies."""
        config = dict(config)
        for key in ("embedding_cls", "embedding_cfg", "hidden_cls", "hidden_cfg", "mask_cls"):
            if config.get(key) is not None:
                config[key] = _deserialize(config[key], key)
        if config.get("mask_cfg") is not None:
            config["mask_cfg"] = _deserialize(config["mask_cfg"], "mask_cfg")
        return cls(**config)
