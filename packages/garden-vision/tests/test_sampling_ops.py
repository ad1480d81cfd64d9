"""Balanced positive/negative sampling (`sampling_ops`) and the `BoxSampler` layer.

Counts follow Model Garden's definition: `int(batch_size * positive_fraction)` positives at
most, negatives for the rest. Randomness is checked by frequencies over many draws.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from garden_vision.modeling.layers.box_sampler import BoxSampler
from garden_vision.ops import sampling_ops
from garden_vision.ops.sampling_ops import BalancedPositiveNegativeSampler


def _vectors(num_positive, num_negative, num_other=0):
    labels = np.array([True] * num_positive + [False] * (num_negative + num_other))
    indicator = np.array([True] * (num_positive + num_negative) + [False] * num_other)
    return tf.constant(indicator), tf.constant(labels)


@pytest.mark.parametrize("is_static", [False, True])
def test_counts_with_enough_candidates(is_static):
    tf.random.set_seed(0)
    indicator, labels = _vectors(20, 50, 10)
    sampler = BalancedPositiveNegativeSampler(positive_fraction=0.25, is_static=is_static)
    chosen = sampler.subsample(indicator, 16, labels).numpy()
    assert chosen.sum() == 16
    assert chosen[:20].sum() == 4  # int(16 * 0.25) positives, 12 negatives.
    assert not chosen[70:].any()  # Non-candidates are never chosen.
    # Few positives: all of them, negatives fill the batch.
    indicator, labels = _vectors(2, 50)
    chosen = sampler.subsample(indicator, 16, labels).numpy()
    assert chosen[:2].all()
    assert chosen.sum() == 16


def test_too_few_candidates_static_fills_with_the_first_non_candidates():
    tf.random.set_seed(1)
    # Candidates: 2 positives and 3 negatives; 10 non-candidates after them.
    indicator, labels = _vectors(2, 3, 10)
    dynamic = BalancedPositiveNegativeSampler(0.5).subsample(indicator, 8, labels).numpy()
    np.testing.assert_array_equal(np.flatnonzero(dynamic), [0, 1, 2, 3, 4])
    static = BalancedPositiveNegativeSampler(0.5, is_static=True)
    chosen = static.subsample(indicator, 8, labels).numpy()
    # Model Garden's static mode: the first 3 non-candidates join as negatives.
    np.testing.assert_array_equal(np.flatnonzero(chosen), [0, 1, 2, 3, 4, 5, 6, 7])


def test_batch_size_none_keeps_positives_and_a_matching_share_of_negatives():
    tf.random.set_seed(2)
    indicator, labels = _vectors(6, 100)
    chosen = BalancedPositiveNegativeSampler(0.25).subsample(indicator, None, labels).numpy()
    assert chosen[:6].all()
    assert chosen[6:].sum() == 18  # (1 - 0.25) / 0.25 = 3 negatives per positive.


def test_samples_are_uniform_over_candidates():
    tf.random.set_seed(3)
    indicator, labels = _vectors(10, 30)
    sampler = BalancedPositiveNegativeSampler(0.5, is_static=True)
    sample = tf.function(lambda: sampler.subsample(indicator, 8, labels))
    draws = np.stack([sample().numpy() for _ in range(600)])
    assert len({row.tobytes() for row in draws}) > 500  # Rarely the same twice.
    # Each positive is picked with probability 4 / 10, each negative with 4 / 30.
    np.testing.assert_allclose(draws[:, :10].mean(0), 0.4, atol=0.08)
    np.testing.assert_allclose(draws[:, 10:].mean(0), 4 / 30, atol=0.05)


def test_subsample_batch_rows_are_independent_and_graph_friendly():
    tf.random.set_seed(4)
    sampler = BalancedPositiveNegativeSampler(0.5, is_static=True)
    spec = tf.TensorSpec([None, None], tf.bool)
    sample = tf.function(lambda i, lab: sampler.subsample_batch(i, 4, lab), [spec, spec])
    labels = np.zeros((3, 12), bool)
    labels[0, :6] = labels[1, :1] = True
    chosen = sample(np.ones((3, 12), bool), labels).numpy()
    np.testing.assert_array_equal(chosen.sum(1), [4, 4, 4])
    np.testing.assert_array_equal((chosen & labels).sum(1), [2, 1, 0])


def test_subsample_indicator_and_errors():
    tf.random.set_seed(5)
    indicator = tf.constant([True, False, True, True, False, True])
    chosen = BalancedPositiveNegativeSampler.subsample_indicator(indicator, 2).numpy()
    assert chosen.sum() == 2
    assert not (chosen & ~indicator.numpy()).any()
    everything = BalancedPositiveNegativeSampler.subsample_indicator(indicator, 10)
    np.testing.assert_array_equal(everything.numpy(), indicator.numpy())

    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(1.5)
    sampler = BalancedPositiveNegativeSampler(0.5, is_static=True)
    with pytest.raises(ValueError, match="labels must be a bool"):
        sampler.subsample(indicator, 2, tf.constant([1, 0, 1, 0, 1, 0]))
    with pytest.raises(ValueError, match="1-dimensional"):
        sampler.subsample(indicator[None], 2, indicator[None])
    with pytest.raises(ValueError, match="is_static"):
        sampler.subsample(indicator, None, indicator)


def test_tensor_helpers():
    dense = sampling_ops.indices_to_dense_vector([4, 1, 4], 6, indices_value=2.0, default_value=-1)
    np.testing.assert_array_equal(dense.numpy(), [-1, 2, -1, -1, 2, -1])
    params = np.arange(12, dtype=np.float32).reshape(4, 3)
    gathered = sampling_ops.matmul_gather_on_zeroth_axis(params, tf.constant([[3, 0], [1, 1]]))
    np.testing.assert_array_equal(gathered.numpy(), params[[[3, 0], [1, 1]]])

    @tf.function(input_signature=[tf.TensorSpec([None, 3])])
    def shape_of(x):
        shape = sampling_ops.combined_static_and_dynamic_shape(x)
        assert isinstance(shape[1], int)
        assert shape[1] == 3
        assert tf.is_tensor(shape[0])
        return shape[0]

    assert int(shape_of(tf.zeros([5, 3]))) == 5


def test_box_sampler_indices_counts_and_serialization():
    tf.random.set_seed(6)
    positive = np.zeros((2, 40), bool)
    positive[0, 5:25] = True
    positive[1, 30] = True
    ignored = np.zeros((2, 40), bool)
    ignored[:, :5] = True
    negative = ~positive & ~ignored
    sampler = BoxSampler(num_samples=12, foreground_fraction=0.25)
    indices = sampler(positive, negative, ignored).numpy()
    assert indices.shape == (2, 12)
    assert indices.dtype == np.int32
    assert (np.diff(indices, axis=1) > 0).all()  # Sampled boxes in index order.
    assert (indices >= 5).all()  # Ignored boxes are never sampled.
    np.testing.assert_array_equal(np.take_along_axis(positive, indices, 1).sum(1), [3, 1])

    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(sampler))
    assert isinstance(clone, BoxSampler)
    assert clone.get_config() == sampler.get_config()
    spec = tf.TensorSpec([None, 40], tf.bool)
    graph = tf.function(lambda p, n, i: clone(p, n, i), input_signature=[spec] * 3)
    assert graph(positive, negative, ignored).shape == (2, 12)
    with pytest.raises(ValueError, match="num_samples=12"):
        sampler(positive[:, :8], negative[:, :8], ignored[:, :8])
    with pytest.raises(ValueError, match="foreground_fraction"):
        BoxSampler(foreground_fraction=-0.1)
