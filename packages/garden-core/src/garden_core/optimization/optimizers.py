"""Optimizers Keras 3 does not offer with Model Garden's semantics: LARS, LAMB, AdamW.

- `LARS`: SGD with momentum and a per-layer trust ratio `eeta * ||w|| / ||g||`
  (You et al., 2017), in Model Garden's "classic" (learning rate inside the momentum) and
  "popular" momentum forms.
- `LAMB`: Adam moments with weight decay added to the update before the per-layer trust
  ratio `||w|| / ||update||` (You et al., 2019), as Model Garden and tensorflow-addons do.
- `AdamWeightDecay`: Keras' AdamW (decoupled decay `w -= lr * rate * w`) with Model
  Garden's include/exclude regular expressions over variable names.
- `Adam`: Keras' Adam.
- `SGD`: Keras' SGD.

`Adam` and `AdamWeightDecay` update each variable with TensorFlow's fused Adam kernel
(`ResourceApplyAdam`: moments and weight in one pass over memory) instead of Keras' six
element-wise ops; the arithmetic is Keras' (`w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
(sqrt(v) + epsilon)`), and AMSGrad keeps Keras' own update. On a CPU this makes the
optimizer step of BERT-base about twice as fast. `SGD` with momentum likewise uses
`ResourceApplyKerasMomentum`, one pass instead of four.

Exclusion lists are regular expressions searched in the variable's path (`dense/kernel`)
and name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

_register = keras.saving.register_keras_serializable(package="garden")


def _patterns(patterns: str | Sequence[str] | None) -> list[str]:
    """One regex or a list of them, as a list (Model Garden configs use either)."""
    if not patterns:
        return []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _matches(variable, patterns: Sequence[str] | None) -> bool:
    if not patterns:
        return False
    path = str(getattr(variable, "path", ""))
    # Model Garden's patterns were written for tf.keras names such as `dense/kernel:0`.
    names = {path, f"{path}:0", str(getattr(variable, "name", ""))}
    return any(re.search(pattern, name) for pattern in patterns for name in names)


def _trust_ratio(numerator_norm, denominator_norm):
    safe = ops.where(denominator_norm > 0, denominator_norm, 1.0)
    return ops.where(
        numerator_norm > 0, ops.where(denominator_norm > 0, numerator_norm / safe, 1.0), 1.0
    )


class _LayerAdaptiveOptimizer(keras.optimizers.Optimizer):
    """Weight decay and layer adaptation with exclusion patterns, shared by LARS and LAMB."""

    def __init__(
        self,
        learning_rate,
        weight_decay_rate: float,
        exclude_from_weight_decay: Sequence[str] | None,
        exclude_from_layer_adaptation: Sequence[str] | None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.weight_decay_rate = weight_decay_rate
        self.exclude_from_weight_decay = _patterns(exclude_from_weight_decay)
        if exclude_from_layer_adaptation is None:  # Model Garden: same as the decay list.
            exclude_from_layer_adaptation = self.exclude_from_weight_decay
        self.exclude_from_layer_adaptation = _patterns(exclude_from_layer_adaptation)

    def _decays(self, variable) -> bool:
        return bool(self.weight_decay_rate) and not _matches(
            variable, self.exclude_from_weight_decay
        )

    def _adapts(self, variable) -> bool:
        return not _matches(variable, self.exclude_from_layer_adaptation)

    def get_config(self):
        config = super().get_config()
        config.update(
            weight_decay_rate=self.weight_decay_rate,
            exclude_from_weight_decay=self.exclude_from_weight_decay,
            exclude_from_layer_adaptation=self.exclude_from_layer_adaptation,
        )
        return config


@_register
class LARS(_LayerAdaptiveOptimizer):
    """Layer-wise adaptive rate scaling."""

    def __init__(
        self,
        learning_rate=0.1,
        momentum: float = 0.9,
        eeta: float = 0.001,
        weight_decay_rate: float = 0.0,
        nesterov: bool = False,
        classic_momentum: bool = True,
        exclude_from_weight_decay: Sequence[str] | None = None,
        exclude_from_layer_adaptation: Sequence[str] | None = None,
        name: str = "LARS",
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay_rate,
            exclude_from_weight_decay,
            exclude_from_layer_adaptation,
            name=name,
            **kwargs,
        )
        self.momentum = momentum
        self.eeta = eeta
        self.nesterov = nesterov
        self.classic_momentum = classic_momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momenta = [
            self.add_variable_from_reference(variable, name="momentum") for variable in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = self._momenta[self._get_variable_index(variable)]
        if self._decays(variable):
            gradient = gradient + self.weight_decay_rate * variable
        adapt = self._adapts(variable)
        if self.classic_momentum:
            ratio = 1.0
            if adapt:
                ratio = _trust_ratio(
                    self.eeta * ops.norm(ops.reshape(variable, [-1])),
                    ops.norm(ops.reshape(gradient, [-1])),
                )
            scaled = learning_rate * ratio
            next_momentum = self.momentum * momentum + scaled * gradient
            update = (
                self.momentum * next_momentum + scaled * gradient
                if self.nesterov
                else (next_momentum)
            )
            self.assign(momentum, next_momentum)
            self.assign_sub(variable, update)
        else:
            next_momentum = self.momentum * momentum + gradient
            update = self.momentum * next_momentum + gradient if self.nesterov else next_momentum
            ratio = 1.0
            if adapt:
                ratio = _trust_ratio(
                    self.eeta * ops.norm(ops.reshape(variable, [-1])),
                    ops.norm(ops.reshape(update, [-1])),
                )
            self.assign(momentum, next_momentum)
            self.assign_sub(variable, learning_rate * ratio * update)

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=self.momentum,
            eeta=self.eeta,
            nesterov=self.nesterov,
            classic_momentum=self.classic_momentum,
        )
        return config


@_register
class LAMB(_LayerAdaptiveOptimizer):
    """Layer-wise adaptive moments with in-update weight decay."""

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        weight_decay_rate: float = 0.0,
        exclude_from_weight_decay: Sequence[str] | None = None,
        exclude_from_layer_adaptation: Sequence[str] | None = None,
        name: str = "LAMB",
        **kwargs,
    ):
        super().__init__(
            learning_rate,
            weight_decay_rate,
            exclude_from_weight_decay,
            exclude_from_layer_adaptation,
            name=name,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._m = [self.add_variable_from_reference(v, name="m") for v in variables]
        self._v = [self.add_variable_from_reference(v, name="v") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        m, v = self._m[index], self._v[index]
        step = ops.cast(self.iterations + 1, dtype)
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient)
        m_hat = next_m / (1.0 - ops.power(ops.cast(self.beta_1, dtype), step))
        v_hat = next_v / (1.0 - ops.power(ops.cast(self.beta_2, dtype), step))
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if self._decays(variable):
            update = update + self.weight_decay_rate * variable
        ratio = 1.0
        if self._adapts(variable):
            ratio = _trust_ratio(
                ops.norm(ops.reshape(variable, [-1])), ops.norm(ops.reshape(update, [-1]))
            )
        self.assign(m, next_m)
        self.assign(v, next_v)
        self.assign_sub(variable, ratio * learning_rate * update)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config


class _FusedAdamUpdate:
    """Replaces Keras' Adam `update_step` by TensorFlow's fused `ResourceApplyAdam` kernel."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not hasattr(variable, "handle"):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        if isinstance(gradient, tf.IndexedSlices):  # The moments are dense anyway.
            gradient = tf.convert_to_tensor(gradient)
        # Inside `strategy.extended.update` the slots' `handle` is the one on the device of
        # `variable` (the replica being updated).
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, local_step),
            beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


@_register
class SGD(keras.optimizers.SGD):
    """Keras' SGD, updating with TensorFlow's fused momentum kernel.

    With momentum, Keras' update is four element-wise passes over each weight and its
    velocity (scale, subtract, assign, add); `ResourceApplyKerasMomentum` does the same
    arithmetic (`v = momentum * v - lr * g; w += v`, or `w += momentum * v - lr * g` with
    Nesterov) in one. Sparse (`IndexedSlices`) gradients keep Keras' update, which decays
    every row's velocity (the sparse kernel would decay only the rows in the gradient).
    """

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.momentum == 0
            or isinstance(gradient, tf.IndexedSlices)
            or not hasattr(variable, "handle")
        ):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        # Inside `strategy.extended.update` the velocity's `handle` is the one on the device
        # of `variable` (the replica being updated).
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=self.momentums[self._get_variable_index(variable)].value.handle,
            lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype),
            use_nesterov=self.nesterov,
        )


@_register
class Adam(_FusedAdamUpdate, keras.optimizers.Adam):
    """Keras' Adam, updating with TensorFlow's fused Adam kernel."""


@_register
class AdamWeightDecay(_FusedAdamUpdate, keras.optimizers.AdamW):
    """AdamW whose decay skips `exclude_from_weight_decay` unless `include_in_weight_decay`."""

    def __init__(
        self,
        *args,
        include_in_weight_decay: Sequence[str] | None = None,
        exclude_from_weight_decay: Sequence[str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.include_in_weight_decay = _patterns(include_in_weight_decay)
        self.exclude_from_weight_decay_patterns = _patterns(exclude_from_weight_decay)

    def _use_weight_decay(self, variable):
        if _matches(variable, self.include_in_weight_decay):
            return True
        return not _matches(variable, self.exclude_from_weight_decay_patterns)

    def get_config(self):
        config = super().get_config()
        config.update(
            include_in_weight_decay=self.include_in_weight_decay,
            exclude_from_weight_decay=self.exclude_from_weight_decay_patterns,
        )
        return config
