"""Augmentation: the single ops, RandAugment, AutoAugment, RandomErasing, Mixup and CutMix.

Images are tiny (32x32); every policy runs eagerly and inside a `tf.data` map (graph mode).
"""

import numpy as np
import pytest
import tensorflow as tf

from garden_vision.ops import augment

# Model Garden's RandAugment ops: `RandAugment.available_ops` in official/vision/ops/augment.py
# of tf-models-official 2.20 (the 14 transformations of Cubuk et al. 2020, "RandAugment",
# Sec. 3, less Identity, plus AutoAugment's Invert, Cutout and SolarizeAdd).
MODEL_GARDEN_RANDAUGMENT_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Cutout",
    "SolarizeAdd",
)
# Cubuk et al. 2020, "RandAugment", Sec. 3: the transformations it samples from.
RANDAUGMENT_PAPER_OPS = (
    "Identity",
    "AutoContrast",
    "Equalize",
    "Rotate",
    "Solarize",
    "Color",
    "Posterize",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
)
# Model Garden's `NAME_TO_FUNC` also offers these two outside RandAugment.
_ALL_OPS = (*MODEL_GARDEN_RANDAUGMENT_OPS, "Grayscale", "Gaussian_Noise")
# Ops whose output does not depend on the level.
_LEVEL_FREE_OPS = ("AutoContrast", "Equalize", "Invert", "Grayscale")


def _image(seed=0, size=32):
    return tf.constant(np.random.default_rng(seed).integers(0, 256, (size, size, 3)), tf.uint8)


def _map(fn, image, count=4):
    """Runs `fn` in a `tf.data` map over `count` copies of `image` of unknown size."""
    spec = tf.TensorSpec([None, None, image.shape[-1]], image.dtype)
    dataset = tf.data.Dataset.from_generator(lambda: iter([image] * count), output_signature=spec)
    return list(dataset.map(fn).as_numpy_iterator())


# ----------------------------------------------------------------------------------------------
# Single ops.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op_name", _ALL_OPS)
def test_every_op_gives_a_uint8_image_of_the_same_shape(op_name):
    image = _image()
    for level in (0.0, 3.0, 10.0):
        out = augment.apply_augmentation_op(image, op_name, level)
        assert out.dtype == tf.uint8
        assert out.shape == image.shape


@pytest.mark.parametrize("op_name", [op for op in _ALL_OPS if op not in _LEVEL_FREE_OPS])
def test_level_zero_and_ten_give_different_images(op_name):
    image = _image(seed=1)
    low = augment.apply_augmentation_op(image, op_name, 0.0).numpy()
    high = augment.apply_augmentation_op(image, op_name, 10.0).numpy()
    assert np.any(low != high)


@pytest.mark.parametrize("op_name", ["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"])
def test_geometric_ops_and_cutout_are_identity_at_level_zero(op_name):
    image = _image(seed=2)
    np.testing.assert_array_equal(augment.apply_augmentation_op(image, op_name, 0.0), image)
    np.testing.assert_array_equal(augment.apply_augmentation_op(image, "Cutout", 0.0), image)


def test_unknown_op_raises():
    with pytest.raises(ValueError, match="Rotate"):
        augment.apply_augmentation_op(_image(), "Spin", 5.0)


def test_pixel_ops_follow_pil_definitions():
    image = _image(seed=3)
    values = image.numpy().astype(int)
    np.testing.assert_array_equal(augment.invert(image), 255 - values)
    np.testing.assert_array_equal(
        augment.solarize(image, 100), np.where(values < 100, values, 255 - values)
    )
    np.testing.assert_array_equal(augment.posterize(image, 3), values & 0b11100000)
    np.testing.assert_array_equal(augment.posterize(image, 0), 0)
    np.testing.assert_array_equal(
        augment.solarize_add(image, 50),
        np.where(values < 128, np.minimum(values + 50, 255), values),
    )
    np.testing.assert_array_equal(augment.brightness(image, 1.0), values)
    np.testing.assert_array_equal(augment.brightness(image, 0.0), 0)
    # Contrast 0 is the mean gray level everywhere.
    flat = augment.contrast(image, 0.0).numpy()
    assert len(np.unique(flat)) == 1
    low_contrast = tf.constant(np.random.default_rng(4).integers(100, 120, (32, 32, 3)), tf.uint8)
    for op in (augment.autocontrast, augment.equalize):
        stretched = op(low_contrast).numpy()
        assert stretched.min() < 20
        assert stretched.max() > 235
    # Autocontrast maps each channel's range exactly onto [0, 255].
    stretched = augment.autocontrast(low_contrast).numpy()
    np.testing.assert_array_equal(stretched.reshape(-1, 3).min(0), 0)
    np.testing.assert_array_equal(stretched.reshape(-1, 3).max(0), 255)


def test_color_brightness_grayscale_and_cutout_match_numpy_references():
    image = _image(seed=5)
    values = image.numpy().astype(np.float64)
    # ITU-R 601 luma, the gray level of PIL's `convert("L")` and of tf.image.rgb_to_grayscale.
    gray = values @ np.array([0.2989, 0.587, 0.114])
    gray3 = np.repeat(gray[..., None], 3, axis=-1)
    # PIL ImageEnhance semantics: blend(degenerate, image, factor) = d + factor * (image - d).
    for factor in (0.0, 0.5):
        np.testing.assert_allclose(
            augment.color(image, factor).numpy(), gray3 + factor * (values - gray3), atol=1.0
        )
    np.testing.assert_allclose(augment.brightness(image, 0.5).numpy(), 0.5 * values, atol=1.0)
    np.testing.assert_allclose(
        augment.apply_augmentation_op(image, "Grayscale", 0.0).numpy(), gray3, atol=1.0
    )
    # Cutout paints one square of side at most 2 * pad_size with the fill value (gray 128).
    cut = augment.apply_augmentation_op(image, "Cutout", 10.0).numpy()
    changed = np.argwhere(np.any(cut != image.numpy(), axis=-1))
    assert len(changed) > 0
    rows, cols = changed[:, 0], changed[:, 1]
    assert np.all(cut[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] == 128)


def test_geometric_ops_move_content_and_fill_with_replace():
    image = np.zeros((9, 9, 3), np.uint8)
    image[4, 8] = 255  # Right of the center.
    rotated = augment.rotate(tf.constant(image), 90.0, replace=(0, 0, 0)).numpy()
    np.testing.assert_array_equal(np.argwhere(rotated[..., 0] == 255), [[0, 4]])
    moved = augment.translate_x(tf.constant(image), 3.0).numpy()
    np.testing.assert_array_equal(np.argwhere(moved[..., 0] == 255), [[4, 5]])
    # The three columns that came from outside the image are gray.
    np.testing.assert_array_equal(moved[:, -3:], 128)
    moved = augment.translate_y(tf.constant(image), -2.0).numpy()
    np.testing.assert_array_equal(np.argwhere(moved[..., 0] == 255), [[6, 8]])
    np.testing.assert_array_equal(moved[:2], 128)


# ----------------------------------------------------------------------------------------------
# RandAugment.
# ----------------------------------------------------------------------------------------------


def test_randaugment_has_model_gardens_ops():
    assert augment.RANDAUGMENT_OPS == MODEL_GARDEN_RANDAUGMENT_OPS
    assert augment.RandAugment().available_ops == list(MODEL_GARDEN_RANDAUGMENT_OPS)
    # Every transformation of the paper but Identity (a layer may already leave an image be).
    assert set(RANDAUGMENT_PAPER_OPS) - set(augment.RANDAUGMENT_OPS) == {"Identity"}


def test_randaugment_eagerly_and_in_dataset():
    image = _image()
    augmenter = augment.RandAugment(num_layers=2, magnitude=10, magnitude_std=0.5)
    out = augmenter.distort(image)
    assert out.dtype == tf.uint8
    assert out.shape == image.shape
    outs = _map(augmenter.distort, image, count=6)
    assert all(o.dtype == np.uint8 and o.shape == (32, 32, 3) for o in outs)
    assert any(np.any(o != image.numpy()) for o in outs)
    float_out = augment.RandAugment(prob_to_apply=0.5).distort(tf.cast(image, tf.float32))
    assert float_out.dtype == tf.float32


def test_randaugment_exclude_ops():
    image = _image()
    kept = [op for op in MODEL_GARDEN_RANDAUGMENT_OPS if op != "Invert"]
    augmenter = augment.RandAugment(num_layers=1, exclude_ops=kept)
    assert augmenter.available_ops == ["Invert"]
    outcomes = set()
    for _ in range(12):
        out = augmenter.distort(image).numpy()
        if np.array_equal(out, image.numpy()):
            outcomes.add("identity")
        else:
            np.testing.assert_array_equal(out, 255 - image.numpy())
            outcomes.add("invert")
    assert outcomes == {"identity", "invert"}
    with pytest.raises(ValueError, match="Spin"):
        augment.RandAugment(exclude_ops=["Spin"])


def test_randaugment_magnitude_changes_the_output():
    tf.random.set_seed(7)
    image = _image(seed=5)
    photometric = ["Color", "Contrast", "Brightness", "Sharpness"]
    excluded = [op for op in MODEL_GARDEN_RANDAUGMENT_OPS if op not in photometric]

    def draws(magnitude):
        augmenter = augment.RandAugment(num_layers=2, magnitude=magnitude, exclude_ops=excluded)
        return [augmenter.distort(image).numpy() for _ in range(6)]

    original = image.numpy()
    weak = [w for w in draws(0.0) if not np.array_equal(w, original)]
    strong = [s for s in draws(10.0) if not np.array_equal(s, original)]
    assert weak
    assert strong
    # At magnitude 0 each op blends 90% towards its degenerate image; at 10 it extrapolates.
    assert not any(np.array_equal(w, s) for w in weak for s in strong)


def test_randaugment_prob_to_apply_zero_is_identity():
    image = _image()
    out = augment.RandAugment(num_layers=3, prob_to_apply=0.0).distort(image)
    np.testing.assert_array_equal(out, image)


# ----------------------------------------------------------------------------------------------
# AutoAugment.
# ----------------------------------------------------------------------------------------------

_PUBLISHED_SIZES = {
    "v0": 25,
    "test": 1,
    "simple": 13,
    "reduced_cifar10": 25,
    "svhn": 25,
    "reduced_imagenet": 25,
    "panoptic_deeplab_policy": 5,
    "vit": 9,
    "deit3_three_augment": 3,
}


def test_policy_tables_have_the_published_number_of_sub_policies():
    assert {name: len(table) for name, table in augment.AUTOAUGMENT_POLICIES.items()} == (
        _PUBLISHED_SIZES
    )
    assert augment.AUTOAUGMENT_POLICIES["v0"][0] == (("Equalize", 0.8, 1), ("ShearY", 0.8, 4))
    assert all(len(sub) == 3 for sub in augment.AUTOAUGMENT_POLICIES["vit"])


@pytest.mark.parametrize("name", list(_PUBLISHED_SIZES))
def test_every_policy_parses_and_runs_eagerly(name):
    augmenter = augment.AutoAugment(name)
    assert len(augmenter.policies) == _PUBLISHED_SIZES[name]
    image = _image()
    for _ in range(3):
        out = augmenter.distort(image)
        assert out.dtype == tf.uint8
        assert out.shape == image.shape


@pytest.mark.parametrize("name", ["v0", "vit", "deit3_three_augment"])
def test_policies_run_in_dataset(name):
    image = _image()
    outs = _map(augment.AutoAugment(name).distort, image, count=3)
    assert all(o.dtype == np.uint8 and o.shape == (32, 32, 3) for o in outs)


def test_autoaugment_test_policy_is_deterministic_up_to_direction():
    image = _image()
    out = augment.AutoAugment("test", translate_const=10).distort(image).numpy()
    # TranslateX by 4 pixels either way, then Equalize: four columns are uniform.
    left = np.all(out[:, :4] == out[:1, :1])
    right = np.all(out[:, -4:] == out[:1, -1:])
    assert left or right


def test_autoaugment_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="reduced_imagenet") as error:
        augment.AutoAugment("v9")
    assert "panoptic_deeplab_policy" in str(error.value)


def test_autoaugment_custom_policy():
    policy = [[("Invert", 1.0, 0)], [("Invert", 1.0, 0), ("Invert", 1.0, 0)]]
    augmenter = augment.AutoAugment(policies=policy)
    image = _image()
    outs = {augmenter.distort(image).numpy().tobytes() for _ in range(16)}
    assert outs == {image.numpy().tobytes(), (255 - image.numpy()).tobytes()}
    float_out = augmenter.distort(tf.cast(image, tf.float32))
    assert float_out.dtype == tf.float32
    with pytest.raises(ValueError, match="Spin"):
        augment.AutoAugment(policies=[[("Spin", 0.5, 3)]])
    with pytest.raises(ValueError, match="probability"):
        augment.AutoAugment(policies=[[("Invert", 1.5, 3)]])
    with pytest.raises(ValueError, match="name, probability, level"):
        augment.AutoAugment(policies=[[("Invert", 1.0)]])


# ----------------------------------------------------------------------------------------------
# RandomErasing.
# ----------------------------------------------------------------------------------------------


def _erased_mask(original, out):
    return np.any(out != original, axis=-1)


def test_random_erasing_erases_one_rectangle_within_the_area_range():
    tf.random.set_seed(3)
    image = tf.fill([32, 32, 3], 0.5)
    eraser = augment.RandomErasing(probability=1.0, min_area=0.02, max_area=1 / 3)
    fractions = []
    for _ in range(20):
        out = eraser.distort(image).numpy()
        assert out.dtype == np.float32
        assert out.shape == (32, 32, 3)
        mask = _erased_mask(0.5, out)
        ys, xs = np.nonzero(mask)
        # One axis-aligned rectangle.
        assert mask.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        fractions.append(mask.mean())
    assert min(fractions) >= 0.02
    assert max(fractions) <= 1 / 3
    assert max(fractions) - min(fractions) > 0.05


def test_random_erasing_probability_zero_count_range_and_dataset():
    image = tf.fill([32, 32, 3], 0.5)
    np.testing.assert_array_equal(augment.RandomErasing(probability=0.0).distort(image), image)
    eraser = augment.RandomErasing(probability=1.0, max_area=0.1, min_count=2, max_count=3)
    for out in _map(eraser.distort, image, count=4):
        assert out.shape == (32, 32, 3)
        assert 0.02 <= _erased_mask(0.5, out).mean() <= 0.3
    with pytest.raises(TypeError, match="float"):
        augment.RandomErasing(probability=1.0).distort(_image())


# ----------------------------------------------------------------------------------------------
# Mixup and CutMix.
# ----------------------------------------------------------------------------------------------


def _mixup_lambdas(alpha, batch_size):
    """Draws Mixup lambdas through the public call: 1x1 images valued 0/1 alternately."""
    mixer = augment.MixupAndCutmix(
        num_classes=2, mixup_alpha=alpha, cutmix_alpha=0.0, label_smoothing=0.0
    )
    parity = np.arange(batch_size) % 2
    images = tf.constant(parity.reshape(-1, 1, 1, 1), tf.float32)
    mixed, labels = mixer(images, tf.constant(parity))
    mixed = mixed.numpy().reshape(-1)
    # Example i (value v) is mixed with its mirror (value 1 - v): mixed = lam*v + (1-lam)*(1-v).
    lam = np.where(parity == 1, mixed, 1.0 - mixed)
    # The labels carry the same lambda on the example's own class.
    np.testing.assert_allclose(labels.numpy()[np.arange(batch_size), parity], lam, atol=1e-5)
    return lam


@pytest.mark.parametrize("alpha", [0.2, 0.8])
def test_mixup_lambda_follows_beta_alpha_alpha(alpha):
    tf.random.set_seed(11)
    lam = _mixup_lambdas(alpha, 20000)
    assert np.all((lam >= 0) & (lam <= 1))
    expected_variance = 1.0 / (4.0 * (2.0 * alpha + 1.0))  # Var of Beta(a, a).
    assert abs(lam.mean() - 0.5) < 0.015
    assert abs(lam.var() - expected_variance) < 0.004


def test_mixup_labels_are_smoothed_convex_combinations():
    num_classes, smoothing = 10, 0.1
    mixer = augment.MixupAndCutmix(
        num_classes, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=smoothing
    )
    labels = np.arange(8) % num_classes
    images = tf.constant(
        np.arange(8, dtype=np.float32).reshape(-1, 1, 1, 1) * np.ones((1, 4, 4, 3))
    )
    mixed, soft = mixer(images, tf.constant(labels))
    mixed, soft = mixed.numpy(), soft.numpy()
    assert soft.shape == (8, num_classes)
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-5)
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    partner = labels[::-1]
    for i in range(8):
        # mixed = lam * i + (1 - lam) * (7 - i)  =>  lam.
        lam = (mixed[i, 0, 0, 0] - (7 - i)) / (2 * i - 7)
        expected = np.full(num_classes, off)
        expected[labels[i]] += lam * (on - off)
        expected[partner[i]] += (1 - lam) * (on - off)
        np.testing.assert_allclose(soft[i], expected, atol=1e-5)
    assert soft.min() >= off - 1e-6


def test_cutmix_pasted_area_equals_one_minus_lambda():
    tf.random.set_seed(5)
    batch, size = 16, 32
    mixer = augment.MixupAndCutmix(
        num_classes=batch, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0
    )
    images = tf.constant(
        np.arange(batch, dtype=np.float32).reshape(-1, 1, 1, 1) * np.ones((1, size, size, 3))
    )
    labels = np.arange(batch)
    mixed, soft = mixer(images, tf.constant(labels))
    mixed, soft = mixed.numpy(), soft.numpy()
    fractions = []
    for i in range(batch):
        partner = batch - 1 - i
        pasted = mixed[i, ..., 0] == partner
        np.testing.assert_array_equal(mixed[i, ..., 0][~pasted], i)
        lam = soft[i, i]
        np.testing.assert_allclose(pasted.mean(), 1.0 - lam, atol=1e-6)
        np.testing.assert_allclose(soft[i, partner], 1.0 - lam, atol=1e-6)
        if pasted.any():  # The pasted region is one rectangle.
            ys, xs = np.nonzero(pasted)
            assert pasted.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        fractions.append(pasted.mean())
    assert max(fractions) > 0.1


def test_mixup_and_cutmix_in_dataset_and_disabled_paths():
    mixer = augment.MixupAndCutmix(num_classes=5)
    images = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
    labels = np.arange(8) % 5
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat(2).batch(8).map(mixer)
    for mixed, soft in dataset.as_numpy_iterator():
        assert mixed.shape == (8, 32, 32, 3)
        assert mixed.dtype == np.float32
        assert soft.shape == (8, 5)
        np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-5)

    expected = np.full((8, 5), 0.1 / 5)
    expected[np.arange(8), labels] += 0.9
    for off in (
        augment.MixupAndCutmix(num_classes=5, prob=0.0),
        augment.MixupAndCutmix(num_classes=5, mixup_alpha=0.0, cutmix_alpha=0.0),
    ):
        same, soft = off(tf.constant(images), tf.constant(labels[:, None]))
        np.testing.assert_array_equal(same, images)
        np.testing.assert_allclose(soft, expected, rtol=1e-6)
