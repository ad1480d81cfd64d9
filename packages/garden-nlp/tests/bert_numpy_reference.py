"""The original BERT forward pass in NumPy, for checking converted checkpoints.

Written from the BERT paper and the original TF1 `modeling.py` description, independently of
Garden's Keras layers: weights are taken by their TF1 checkpoint names (`bert/...`, `cls/...`)
in their TF1 layouts (`[in, out]` kernels, merged attention heads), so a converter that
reshapes or transposes a tensor the wrong way gives different numbers here.

Math (post-norm Transformer, LayerNorm epsilon 1e-12, exact erf GELU):

    x = LN(word[ids] + position[:S] + type[type_ids])
    per layer: a = softmax(Q K^T / sqrt(d) + (1 - mask) * -10000) V, merged over heads
               x = LN(x + a W_o + b_o);  x = LN(x + act(x W_1 + b_1) W_2 + b_2)
    pooled = tanh(x[:, 0] W_p + b_p)
    MLM logits = LN(act(x[positions] W_t + b_t)) word^T + output_bias
    NSP logits = pooled output_weights^T + output_bias
"""

from __future__ import annotations

import math

import numpy as np

LAYER_NORM_EPSILON = 1e-12
MASK_ADDER = -10000.0


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU, x * Phi(x), with the Gaussian CDF through erf."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


ACTIVATIONS = {"gelu": gelu, "relu": lambda x: np.maximum(x, 0.0)}


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LAYER_NORM_EPSILON) * gamma + beta


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _dense(w: dict, scope: str, x: np.ndarray) -> np.ndarray:
    return x @ w[f"{scope}/kernel"] + w[f"{scope}/bias"]


def _norm(w: dict, scope: str, x: np.ndarray) -> np.ndarray:
    return layer_norm(x, w[f"{scope}/gamma"], w[f"{scope}/beta"])


def bert_forward(
    weights: dict[str, np.ndarray],
    config: dict,
    input_word_ids: np.ndarray,
    input_mask: np.ndarray,
    input_type_ids: np.ndarray,
) -> dict[str, np.ndarray]:
    """Runs the BERT encoder; returns `sequence_output` [B, S, H] and `pooled_output` [B, H].

    Args:
      weights: TF1 BERT checkpoint tensors by name (float arrays).
      config: `bert_config.json` fields (`num_hidden_layers`, `num_attention_heads`,
        `hidden_act`).
      input_word_ids: int [B, S] token ids.
      input_mask: int [B, S], 1 for real tokens and 0 for padding.
      input_type_ids: int [B, S] segment ids.
    """
    w = {name: np.asarray(value, np.float64) for name, value in weights.items()}
    act = ACTIVATIONS[config["hidden_act"]]
    heads = config["num_attention_heads"]
    batch, seq = input_word_ids.shape
    x = (
        w["bert/embeddings/word_embeddings"][input_word_ids]
        + w["bert/embeddings/position_embeddings"][:seq][None]
        + w["bert/embeddings/token_type_embeddings"][input_type_ids]
    )
    x = _norm(w, "bert/embeddings/LayerNorm", x)
    hidden = x.shape[-1]
    head_dim = hidden // heads
    adder = (1.0 - input_mask.astype(np.float64))[:, None, None, :] * MASK_ADDER

    def split_heads(t: np.ndarray) -> np.ndarray:  # [B, S, H] -> [B, heads, S, d]
        return t.reshape(batch, seq, heads, head_dim).transpose(0, 2, 1, 3)

    for i in range(config["num_hidden_layers"]):
        scope = f"bert/encoder/layer_{i}"
        q = split_heads(_dense(w, f"{scope}/attention/self/query", x))
        k = split_heads(_dense(w, f"{scope}/attention/self/key", x))
        v = split_heads(_dense(w, f"{scope}/attention/self/value", x))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + adder
        context = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        attention = _dense(w, f"{scope}/attention/output/dense", context)
        x = _norm(w, f"{scope}/attention/output/LayerNorm", x + attention)
        inner = act(_dense(w, f"{scope}/intermediate/dense", x))
        x = _norm(w, f"{scope}/output/LayerNorm", x + _dense(w, f"{scope}/output/dense", inner))
    pooled = np.tanh(_dense(w, "bert/pooler/dense", x[:, 0]))
    return {"sequence_output": x, "pooled_output": pooled}


def masked_lm_logits(
    weights: dict[str, np.ndarray],
    config: dict,
    sequence_output: np.ndarray,
    masked_positions: np.ndarray,
) -> np.ndarray:
    """The `cls/predictions` head: logits [B, P, vocab] at `masked_positions` [B, P]."""
    w = {name: np.asarray(value, np.float64) for name, value in weights.items()}
    act = ACTIVATIONS[config["hidden_act"]]
    gathered = np.take_along_axis(sequence_output, masked_positions[:, :, None], axis=1)
    x = act(_dense(w, "cls/predictions/transform/dense", gathered))
    x = _norm(w, "cls/predictions/transform/LayerNorm", x)
    return x @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]


def next_sentence_logits(weights: dict[str, np.ndarray], pooled_output: np.ndarray) -> np.ndarray:
    """The `cls/seq_relationship` head: logits [B, 2] from the pooled output."""
    kernel = np.asarray(weights["cls/seq_relationship/output_weights"], np.float64)  # [2, H]
    bias = np.asarray(weights["cls/seq_relationship/output_bias"], np.float64)
    return pooled_output @ kernel.T + bias


def random_weights(config: dict, seed: int = 0, heads: bool = True) -> dict[str, np.ndarray]:
    """Random float32 TF1 BERT tensors (by checkpoint name) for `config`.

    Scales are chosen so activations stay in a range where every nonlinearity matters
    (non-trivial LayerNorm gains and biases, GELU inputs around +-2).

    Args:
      config: `bert_config.json` fields.
      seed: NumPy seed.
      heads: Whether to add the `cls/predictions` and `cls/seq_relationship` heads.
    """
    rng = np.random.default_rng(seed)
    hidden, inner = config["hidden_size"], config["intermediate_size"]

    def normal(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def dense(scope: str, fan_in: int, fan_out: int) -> None:
        w[f"{scope}/kernel"] = normal(fan_in, fan_out, scale=1.0 / math.sqrt(fan_in))
        w[f"{scope}/bias"] = normal(fan_out, scale=0.1)

    def norm(scope: str) -> None:
        w[f"{scope}/gamma"] = (1.0 + normal(hidden, scale=0.1)).astype(np.float32)
        w[f"{scope}/beta"] = normal(hidden, scale=0.1)

    w: dict[str, np.ndarray] = {
        "bert/embeddings/word_embeddings": normal(config["vocab_size"], hidden, scale=0.5),
        "bert/embeddings/token_type_embeddings": normal(config["type_vocab_size"], hidden),
        "bert/embeddings/position_embeddings": normal(config["max_position_embeddings"], hidden),
    }
    norm("bert/embeddings/LayerNorm")
    for i in range(config["num_hidden_layers"]):
        scope = f"bert/encoder/layer_{i}"
        for name in ("query", "key", "value"):
            dense(f"{scope}/attention/self/{name}", hidden, hidden)
        dense(f"{scope}/attention/output/dense", hidden, hidden)
        norm(f"{scope}/attention/output/LayerNorm")
        dense(f"{scope}/intermediate/dense", hidden, inner)
        dense(f"{scope}/output/dense", inner, hidden)
        norm(f"{scope}/output/LayerNorm")
    dense("bert/pooler/dense", hidden, hidden)
    if heads:
        dense("cls/predictions/transform/dense", hidden, hidden)
        norm("cls/predictions/transform/LayerNorm")
        w["cls/predictions/output_bias"] = normal(config["vocab_size"], scale=0.1)
        w["cls/seq_relationship/output_weights"] = normal(2, hidden, scale=0.3)
        w["cls/seq_relationship/output_bias"] = normal(2, scale=0.1)
    return w
