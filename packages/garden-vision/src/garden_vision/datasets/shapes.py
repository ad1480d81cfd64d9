"""`garden_shapes`: a generated dataset of coloured geometric shapes, as a TFDS builder.

Garden's Quickstart trains on this dataset because it needs no download: every example is
rendered with NumPy from a fixed seed, the split name and the example's index, so two
generations on the same machine are byte-identical and any example can be re-rendered alone
with `render_example`.

Each image shows one or more filled shapes (circle, square, triangle, diamond, star, cross,
hexagon, ring, crescent) at a random position, scale and rotation, in a random colour that
contrasts with a textured background (smooth noise, stripes, a checkerboard or a gradient in
two random colours), with soft shading, antialiased edges and pixel noise. Shapes always lie
fully inside the image. Where several are drawn, they overlap only a little; later shapes
occlude earlier ones, and every mask, box and area describes the visible pixels only.

Builder configs:

* `single` (default): one shape per 64x64 image, 5,000 train and 1,000 validation examples,
  for image classification; `label` is the shape's class.
* `multi`: 1-4 shapes per 128x128 image, 2,000 train and 500 validation examples, for
  detection and segmentation; `label` is the class of the largest visible shape and
  `instance_masks` holds one mask per object.

Features: `image` (uint8 HxWx3), `label` (ClassLabel), `objects` (a Sequence of `bbox`
[ymin, xmin, ymax, xmax] normalized to [0, 1] with ymax/xmax exclusive pixel edges, `label`
and `area`, the visible pixel count), `segmentation_mask` (uint8 HxWx1: 0 for background,
class id + 1 elsewhere) and, for `multi`, `instance_masks` (uint8 NxHxWx1 of 0/1).

Importing this module registers the builder with TFDS under the name `garden_shapes`, so
afterwards `tfds.load("garden_shapes", data_dir=DIR)` (or `"garden_shapes/multi"`) prepares
and reads it, as does `GardenShapes(data_dir=DIR).download_and_prepare()`. Generation
downloads nothing; `single` takes about 25 seconds on one CPU core.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "star",
    "cross",
    "hexagon",
    "ring",
    "crescent",
)
"""The class names, in class-id order."""

SPLITS: tuple[str, ...] = ("train", "validation")
"""The splits the builder generates."""

_TAU = 2.0 * np.pi
# Euclidean RGB distance a shape's colour keeps from its background's colour range, and from
# the colours of the shapes drawn before it.
_BACKGROUND_CONTRAST = 110.0
_SHAPE_CONTRAST = 70.0
_COLOUR_TRIES = 64
_PLACEMENT_TRIES = 40
# Centres of two shapes are at least this fraction of the sum of their radii apart, so shapes
# overlap a little at most and none is hidden by the others.
_MIN_CENTRE_DISTANCE = 0.8


@dataclasses.dataclass(eq=False)
class GardenShapesConfig(tfds.core.BuilderConfig):
    """A `garden_shapes` builder config: what is drawn, at which size, and how many examples.

    Radii are circumradii (every shape fits in the disk of that radius around its centre)
    as fractions of `image_size`.

    Args:
        name: The config name (`single`, `multi`, or a new name for a custom config).
        image_size: The height and width of the square images, in pixels.
        min_shapes: The fewest shapes drawn in one image.
        max_shapes: The most shapes drawn in one image. Fewer are drawn when no place is
            found for a shape after many tries.
        min_radius: The smallest shape radius, as a fraction of `image_size`.
        max_radius: The largest shape radius, as a fraction of `image_size`; below 0.5 so
            that a shape fits inside the image.
        instance_masks: Whether examples carry the `instance_masks` feature.
        train_examples: The number of examples in the `train` split.
        validation_examples: The number of examples in the `validation` split.
        seed: The base seed; together with the split name and example index it determines
            each example.
        version: The config version; None uses the builder's.
        release_notes: Per-version release notes of the config, if it has its own.
        supported_versions: Other versions the config supports.
        description: A human description of the config.
        tags: Free-form tags.

    Raises:
        ValueError: If a size, count or radius is out of range.
    """

    image_size: int = 64
    min_shapes: int = 1
    max_shapes: int = 1
    min_radius: float = 0.18
    max_radius: float = 0.46
    instance_masks: bool = False
    train_examples: int = 5000
    validation_examples: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"GardenShapesConfig.image_size must be >= 16; got {self.image_size}")
        if not 1 <= self.min_shapes <= self.max_shapes:
            raise ValueError(
                "GardenShapesConfig needs 1 <= min_shapes <= max_shapes; got "
                f"min_shapes={self.min_shapes}, max_shapes={self.max_shapes}"
            )
        largest = 0.5 - 1.5 / self.image_size
        if not 0.0 < self.min_radius <= self.max_radius <= largest:
            raise ValueError(
                f"GardenShapesConfig needs 0 < min_radius <= max_radius <= {largest:.4f} "
                f"(for image_size {self.image_size}); got min_radius={self.min_radius}, "
                f"max_radius={self.max_radius}"
            )
        if self.min_radius * self.image_size < 4.0:
            raise ValueError(
                "GardenShapesConfig.min_radius * image_size must be at least 4 pixels for the "
                f"shapes to be recognisable; got {self.min_radius * self.image_size:.2f}"
            )
        if self.train_examples < 1 or self.validation_examples < 1:
            raise ValueError(
                "GardenShapesConfig needs at least one example per split; got "
                f"train_examples={self.train_examples}, "
                f"validation_examples={self.validation_examples}"
            )

    def num_examples(self, split: str) -> int:
        """The number of examples of `split` (`train` or `validation`)."""
        if split == "train":
            return self.train_examples
        if split == "validation":
            return self.validation_examples
        raise ValueError(f"garden_shapes has no split {split!r}; splits: {', '.join(SPLITS)}")


SINGLE = GardenShapesConfig(
    name="single",
    description="One shape per 64x64 image, for image classification.",
)
MULTI = GardenShapesConfig(
    name="multi",
    description=(
        "One to four shapes per 128x128 image, with boxes, instance masks and a semantic "
        "mask, for detection and segmentation."
    ),
    image_size=128,
    min_shapes=1,
    max_shapes=4,
    min_radius=0.09,
    max_radius=0.22,
    instance_masks=True,
    train_examples=2000,
    validation_examples=500,
)
_CONFIGS = {c.name: c for c in (SINGLE, MULTI)}


# --- Shapes, as signed distance functions in a unit frame. ---------------------------------
#
# Each function takes the coordinates (u, v) of pixel centres in the shape's own frame,
# where the shape fits in the unit disk, and returns the signed distance to the outline in
# the same units: negative inside. Multiplied by the radius in pixels, it gives the distance
# in pixels, which antialiases edges.


def _regular_polygon(sides: int, phase: float, radius: float = 1.0) -> np.ndarray:
    angles = phase + _TAU * np.arange(sides) / sides
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def _star_polygon(points: int, inner_radius: float) -> np.ndarray:
    angles = np.pi / 2 + np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner_radius)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=-1)


def _polygon_sdf(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The exact signed distance to a simple polygon (convex or not), vectorized over edges."""
    start = vertices
    edge = np.roll(vertices, -1, axis=0) - vertices
    pu = u[..., None] - start[:, 0]
    pv = v[..., None] - start[:, 1]
    along = (pu * edge[:, 0] + pv * edge[:, 1]) / np.sum(edge * edge, axis=1)
    along = np.clip(along, 0.0, 1.0)
    distance = np.min(np.hypot(pu - along * edge[:, 0], pv - along * edge[:, 1]), axis=-1)
    # Even-odd rule: count the edges a ray towards +u crosses.
    end_v = start[:, 1] + edge[:, 1]
    straddles = (start[:, 1] > v[..., None]) != (end_v > v[..., None])
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_u = start[:, 0] + edge[:, 0] * (v[..., None] - start[:, 1]) / edge[:, 1]
    inside = np.sum(straddles & (u[..., None] < crossing_u), axis=-1) % 2 == 1
    return np.where(inside, -distance, distance)


def _polygon(vertices: np.ndarray):
    return lambda u, v: _polygon_sdf(u, v, vertices)


def _circle_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - 1.0


def _ring_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(np.hypot(u, v) - 0.72) - 0.28


def _crescent_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.hypot(u, v) - 1.0, 0.78 - np.hypot(u - 0.42, v))


_CROSS_ARM_LENGTH, _CROSS_ARM_WIDTH = 0.94, 0.32
_SHAPE_SDFS = {
    "circle": _circle_sdf,
    "square": _polygon(_regular_polygon(4, np.pi / 4)),
    "triangle": _polygon(_regular_polygon(3, np.pi / 2)),
    "diamond": _polygon(np.array([[1.0, 0.0], [0.0, 0.55], [-1.0, 0.0], [0.0, -0.55]])),
    "star": _polygon(_star_polygon(5, 0.45)),
    "cross": _polygon(
        np.array(
            [
                [_CROSS_ARM_LENGTH, _CROSS_ARM_WIDTH],
                [_CROSS_ARM_WIDTH, _CROSS_ARM_WIDTH],
                [_CROSS_ARM_WIDTH, _CROSS_ARM_LENGTH],
                [-_CROSS_ARM_WIDTH, _CROSS_ARM_LENGTH],
                [-_CROSS_ARM_WIDTH, _CROSS_ARM_WIDTH],
                [-_CROSS_ARM_LENGTH, _CROSS_ARM_WIDTH],
                [-_CROSS_ARM_LENGTH, -_CROSS_ARM_WIDTH],
                [-_CROSS_ARM_WIDTH, -_CROSS_ARM_WIDTH],
                [-_CROSS_ARM_WIDTH, -_CROSS_ARM_LENGTH],
                [_CROSS_ARM_WIDTH, -_CROSS_ARM_LENGTH],
                [_CROSS_ARM_WIDTH, -_CROSS_ARM_WIDTH],
                [_CROSS_ARM_LENGTH, -_CROSS_ARM_WIDTH],
            ]
        )
    ),
    "hexagon": _polygon(_regular_polygon(6, 0.0)),
    "ring": _ring_sdf,
    "crescent": _crescent_sdf,
}
assert tuple(_SHAPE_SDFS) == CLASS_NAMES


# --- Backgrounds and colours. ---------------------------------------------------------------


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def _texture(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """A background texture in [0, 1]: smooth noise, stripes, a checkerboard or a gradient."""
    kind = rng.integers(4)
    angle = rng.uniform(0.0, _TAU)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    across = -xs * np.sin(angle) + ys * np.cos(angle)
    if kind == 0:  # Smooth value noise: a coarse random grid, interpolated.
        cells = int(rng.integers(2, 7))
        grid = rng.uniform(0.0, 1.0, (cells + 1, cells + 1))
        gy, gx = ys / size * cells, xs / size * cells
        iy = np.minimum(np.floor(gy).astype(np.int64), cells - 1)
        ix = np.minimum(np.floor(gx).astype(np.int64), cells - 1)
        fy, fx = _smoothstep(gy - iy), _smoothstep(gx - ix)
        top = grid[iy, ix] * (1.0 - fx) + grid[iy, ix + 1] * fx
        bottom = grid[iy + 1, ix] * (1.0 - fx) + grid[iy + 1, ix + 1] * fx
        return top * (1.0 - fy) + bottom * fy
    if kind == 1:  # Stripes, from sinusoidal to nearly hard-edged.
        period = rng.uniform(0.1, 0.4) * size
        sharpness = rng.uniform(0.5, 6.0)
        wave = np.sin(_TAU * along / period + rng.uniform(0.0, _TAU))
        return 0.5 + 0.5 * np.tanh(sharpness * wave) / np.tanh(sharpness)
    if kind == 2:  # A rotated checkerboard.
        cell = rng.uniform(0.08, 0.25) * size
        offset = rng.uniform(0.0, cell, 2)
        squares = np.floor((along + offset[0]) / cell) + np.floor((across + offset[1]) / cell)
        return np.mod(squares, 2.0)
    # A linear gradient across the image.
    low, high = along.min(), along.max()
    return (along - low) / (high - low)


def _distance_to_segment(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    direction = end - start
    length = float(direction @ direction)
    t = 0.0 if length == 0.0 else float(np.clip((point - start) @ direction / length, 0.0, 1.0))
    return float(np.linalg.norm(point - start - t * direction))


def _shape_colour(
    rng: np.random.Generator,
    background: tuple[np.ndarray, np.ndarray],
    others: Sequence[np.ndarray],
) -> np.ndarray:
    """A random colour far from the background's colour range and from earlier shapes."""
    best, best_score = None, -1.0
    for _ in range(_COLOUR_TRIES):
        candidate = rng.uniform(0.0, 255.0, 3)
        score = _distance_to_segment(candidate, *background) / _BACKGROUND_CONTRAST
        for other in others:
            score = min(score, float(np.linalg.norm(candidate - other)) / _SHAPE_CONTRAST)
        if score >= 1.0:
            return candidate
        if score > best_score:
            best, best_score = candidate, score
    return best


def _shape_frame(
    ys: np.ndarray, xs: np.ndarray, cy: float, cx: float, radius: float, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in a shape's unit frame (rotated by `angle`, scaled)."""
    dy, dx = ys - cy, xs - cx
    cos, sin = np.cos(angle), np.sin(angle)
    return (dx * cos + dy * sin) / radius, (-dx * sin + dy * cos) / radius


def shape_mask(
    class_name: str,
    image_size: int,
    radius: float,
    angle: float = 0.0,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """The pixels one shape covers, exactly as `render_example` rasterizes it.

    Args:
        class_name: One of `CLASS_NAMES`.
        image_size: The height and width of the mask.
        radius: The shape's circumradius in pixels.
        angle: The rotation in radians.
        centre: The (y, x) centre in pixels; None is the image's centre.

    Returns:
        A bool [image_size, image_size] mask.

    Raises:
        ValueError: If `class_name` is not a class of the dataset.
    """
    if class_name not in _SHAPE_SDFS:
        raise ValueError(
            f"garden_shapes has no class {class_name!r}; classes: {', '.join(CLASS_NAMES)}"
        )
    cy, cx = centre if centre is not None else (image_size / 2.0, image_size / 2.0)
    grid = np.arange(image_size, dtype=np.float64) + 0.5
    u, v = _shape_frame(grid[:, None], grid[None, :], cy, cx, radius, angle)
    return _SHAPE_SDFS[class_name](u, v) < 0.0


# --- Examples. ------------------------------------------------------------------------------


def _resolve_config(config: GardenShapesConfig | str) -> GardenShapesConfig:
    if isinstance(config, GardenShapesConfig):
        return config
    if config in _CONFIGS:
        return _CONFIGS[config]
    raise ValueError(
        f"garden_shapes has no builder config {config!r}; configs: {', '.join(_CONFIGS)}"
    )


def render_example(config: GardenShapesConfig | str, split: str, index: int) -> dict[str, Any]:
    """Renders one example of `garden_shapes` with NumPy alone, as the builder stores it.

    The example depends only on the config's drawing fields (`image_size`, shape counts and
    radii, `seed`), the split name and the index, never on split sizes, so a smaller custom
    config renders the same first examples as the full one.

    Args:
        config: A `GardenShapesConfig`, or the name of a predefined one (`single`, `multi`).
        split: The split name, for example `train` or `validation`; it selects the seed.
        index: The example's index within the split, >= 0.

    Returns:
        A dict with `image` (uint8 [H, W, 3]), `label` (int), `segmentation_mask` (uint8
        [H, W, 1]: 0 background, class id + 1 on visible shape pixels), `objects` (a dict of
        `bbox` float32 [N, 4] normalized [ymin, xmin, ymax, xmax] of the visible pixels with
        exclusive max edges, `label` int64 [N] and `area` int64 [N] visible pixel counts, in
        drawing order) and `instance_masks` (uint8 [N, H, W, 1] of 0/1 visible pixels).

    Raises:
        ValueError: If `config` names no predefined config or `index` is negative.
    """
    config = _resolve_config(config)
    if index < 0:
        raise ValueError(f"render_example needs an index >= 0; got {index}")
    rng = np.random.default_rng([config.seed, zlib.crc32(split.encode("utf-8")), index])
    size = config.image_size
    ys = (np.arange(size, dtype=np.float64) + 0.5)[:, None]
    xs = (np.arange(size, dtype=np.float64) + 0.5)[None, :]

    low = rng.uniform(0.0, 255.0, 3)
    high = np.clip(low + rng.uniform(-90.0, 90.0, 3), 0.0, 255.0)
    image = low + _texture(rng, ys, xs, size)[..., None] * (high - low)

    num_shapes = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    placed: list[tuple[float, float, float]] = []
    colours: list[np.ndarray] = []
    classes: list[int] = []
    masks: list[np.ndarray] = []
    for _ in range(num_shapes):
        for _ in range(_PLACEMENT_TRIES):
            radius = rng.uniform(config.min_radius, config.max_radius) * size
            cy, cx = rng.uniform(radius + 1.0, size - radius - 1.0, 2)
            if all(
                np.hypot(cy - oy, cx - ox) >= _MIN_CENTRE_DISTANCE * (radius + other_radius)
                for oy, ox, other_radius in placed
            ):
                break
        else:
            continue  # No room left for this shape: draw fewer.
        class_id = int(rng.integers(len(CLASS_NAMES)))
        angle = rng.uniform(0.0, _TAU)
        colour = _shape_colour(rng, (low, high), colours)
        # Only the square around the shape's disk (plus the antialiasing margin) changes.
        top, left = int(max(cy - radius - 1.0, 0.0)), int(max(cx - radius - 1.0, 0.0))
        bottom = int(min(np.ceil(cy + radius + 1.0), size))
        right = int(min(np.ceil(cx + radius + 1.0), size))
        u, v = _shape_frame(ys[top:bottom], xs[:, left:right], cy, cx, radius, angle)
        signed_distance = _SHAPE_SDFS[CLASS_NAMES[class_id]](u, v) * radius
        coverage = np.clip(0.5 - signed_distance, 0.0, 1.0)[..., None]
        shading_angle = rng.uniform(0.0, _TAU)
        shading = 1.0 + rng.uniform(0.0, 0.12) * (
            u * np.cos(shading_angle) + v * np.sin(shading_angle)
        )
        fill = np.clip(colour * shading[..., None], 0.0, 255.0)
        window = image[top:bottom, left:right]
        image[top:bottom, left:right] = window * (1.0 - coverage) + fill * coverage
        mask = np.zeros((size, size), dtype=bool)
        mask[top:bottom, left:right] = signed_distance < 0.0
        placed.append((cy, cx, radius))
        colours.append(colour)
        classes.append(class_id)
        masks.append(mask)

    image = image + rng.normal(0.0, rng.uniform(0.0, 6.0), image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    # Visible pixels: later shapes occlude earlier ones.
    covered = np.zeros((size, size), dtype=bool)
    visible = [None] * len(masks)
    for i in reversed(range(len(masks))):
        visible[i] = masks[i] & ~covered
        covered |= masks[i]
    segmentation = np.zeros((size, size, 1), dtype=np.uint8)
    boxes, labels, areas, instances = [], [], [], []
    for class_id, mask in zip(classes, visible, strict=True):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            continue
        segmentation[mask, 0] = class_id + 1
        boxes.append([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1])
        labels.append(class_id)
        areas.append(int(mask.sum()))
        instances.append(mask.astype(np.uint8)[..., None])
    areas_array = np.asarray(areas, dtype=np.int64)
    return {
        "image": image,
        "label": labels[int(np.argmax(areas_array))],
        "segmentation_mask": segmentation,
        "objects": {
            "bbox": np.asarray(boxes, dtype=np.float32).reshape(-1, 4) / np.float32(size),
            "label": np.asarray(labels, dtype=np.int64),
            "area": areas_array,
        },
        "instance_masks": np.stack(instances).astype(np.uint8),
    }


class GardenShapes(tfds.core.GeneratorBasedBuilder):
    """The `garden_shapes` TFDS builder: images of shapes rendered from a fixed seed.

    Its examples come from `render_example`; see the module docstring for what they hold.
    Nothing is downloaded, so `download_and_prepare` works offline. Besides the predefined
    `single` and `multi` configs, a custom `GardenShapesConfig` (with a new name) can be
    passed as `config`, for example a small one for tests.

    Args:
        data_dir: The TFDS data directory to write to and read from; None uses TFDS's
            default.
        config: A config name (`single`, `multi`) or a `GardenShapesConfig`; None is
            `single`.
        version: The version to load; None is the builder's `VERSION`.
        **kwargs: Other `tfds.core.GeneratorBasedBuilder` arguments.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": (
            "Initial release: nine shape classes on textured backgrounds; configs `single` "
            "(64x64, one shape) and `multi` (128x128, 1-4 shapes, instance masks)."
        ),
    }
    BUILDER_CONFIGS = [SINGLE, MULTI]
    DEFAULT_BUILDER_CONFIG_NAME = "single"

    @property
    def shapes_config(self) -> GardenShapesConfig:
        """The builder's config, typed."""
        return self.builder_config

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.shapes_config
        size = config.image_size
        features = {
            "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
            "label": tfds.features.ClassLabel(names=CLASS_NAMES),
            "objects": tfds.features.Sequence(
                {
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "area": tfds.features.Scalar(dtype=np.int64),
                }
            ),
            "segmentation_mask": tfds.features.Image(shape=(size, size, 1), encoding_format="png"),
        }
        if config.instance_masks:
            features["instance_masks"] = tfds.features.Sequence(
                tfds.features.Image(shape=(size, size, 1), encoding_format="png")
            )
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Generated images of coloured geometric shapes on textured backgrounds, "
                "with class labels, boxes, areas and masks; rendered from a fixed seed, "
                "nothing is downloaded."
            ),
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        del dl_manager  # Everything is generated.
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        config = self.shapes_config
        for index in range(config.num_examples(split)):
            example = render_example(config, split, index)
            if not config.instance_masks:
                del example["instance_masks"]
            yield index, example


def prepare(name: str = "garden_shapes", data_dir: str | None = None) -> GardenShapes:
    """Generates `name` (`garden_shapes` or `garden_shapes/<config>`) into `data_dir` once.

    A dataset already prepared there is reused as it is; otherwise it is generated (no
    download), which for `single` takes about half a minute. A custom config (one not in
    `GardenShapes.BUILDER_CONFIGS`) cannot be generated by name: prepare it with
    `GardenShapes(config=..., data_dir=...)` first; it is then read from `data_dir`.
    Returns the builder.

    Args:
        name: The TFDS name, with an optional config (`garden_shapes/multi`).
        data_dir: The TFDS data directory; None uses TFDS's default (`~/tensorflow_datasets`
            or `$TFDS_DATA_DIR`).
    """
    _, _, config_name = name.partition("/")
    if config_name and config_name not in {c.name for c in GardenShapes.BUILDER_CONFIGS}:
        return tfds.builder(name, data_dir=data_dir)  # Prepared by the caller.
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    return builder
