"""Pasting per-box mask grids onto the image (`mask_ops`), against per-pixel references."""

import math

import numpy as np
import pytest

from garden_vision.evaluation import coco_utils
from garden_vision.ops import mask_ops


def _sample(grid, y, x):
    """Bilinear value of `grid` at (y, x), clamped to its edges."""
    height, width = grid.shape
    y, x = min(max(y, 0.0), height - 1.0), min(max(x, 0.0), width - 1.0)
    y0, x0 = math.floor(y), math.floor(x)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    top = (1 - lx) * grid[y0, x0] + lx * grid[y0, x1]
    return (1 - ly) * top + ly * ((1 - lx) * grid[y1, x0] + lx * grid[y1, x1])


def reference_paste(mask, box_xywh, image_height, image_width, v2):
    """Per-pixel pasting: the grid value at each pixel centre, above 0.5."""
    x, y, width, height = box_xywh
    out = np.zeros((image_height, image_width), np.uint8)
    grid = np.pad(mask, 1) if v2 else mask
    shift = 1.0 if v2 else 0.0
    for row in range(image_height):
        for col in range(image_width):
            cy, cx = row + 0.5, col + 0.5
            if v2:
                inside = math.floor(y) <= row < math.ceil(y + height)
                inside &= math.floor(x) <= col < math.ceil(x + width)
            else:
                inside = y < cy < y + height and x < cx < x + width
            if inside:
                gy = (cy - y) * mask.shape[0] / height - 0.5 + shift
                gx = (cx - x) * mask.shape[1] / width - 0.5 + shift
                out[row, col] = _sample(grid, gy, gx) > 0.5
    return out


def test_a_mask_of_ones_fills_the_pixels_whose_centres_are_inside():
    rng = np.random.default_rng(0)
    for _ in range(10):
        x, y = rng.uniform(-3, 20, 2)
        width, height = rng.uniform(1, 15, 2)
        box = np.array([[x, y, width, height]])
        pasted = mask_ops.paste_instance_masks(np.ones((1, 5, 7)), box, 24, 30)[0]
        rows = np.arange(24)[:, None] + 0.5
        cols = np.arange(30)[None, :] + 0.5
        expected = (rows > y) & (rows < y + height) & (cols > x) & (cols < x + width)
        np.testing.assert_array_equal(pasted, expected.astype(np.uint8))
        # v2 fades to 0 over the outer half cell: inside that, all set; outside, none.
        faded = mask_ops.paste_instance_masks_v2(np.ones((1, 5, 7)), box, 24, 30)[0]
        cell_y, cell_x = height / 5, width / 7
        core = (rows > y + cell_y / 2) & (rows < y + height - cell_y / 2)
        core = core & (cols > x + cell_x / 2) & (cols < x + width - cell_x / 2)
        assert faded[core].all()
        assert not faded[~expected].any()


def test_pixel_aligned_box_copies_the_thresholded_grid():
    mask = np.array([[0.9, 0.1, 0.6, 0.4], [0.2, 0.7, 0.3, 0.8]])
    box = np.array([[2.0, 3.0, 4.0, 2.0]])  # x, y, width, height: one pixel per cell.
    expected = np.zeros((7, 8), np.uint8)
    expected[3:5, 2:6] = mask > 0.5
    for paste in (mask_ops.paste_instance_masks, mask_ops.paste_instance_masks_v2):
        np.testing.assert_array_equal(paste(mask[None], box, 7, 8)[0], expected)


@pytest.mark.parametrize("v2", [False, True])
def test_random_masks_match_the_per_pixel_reference(v2):
    rng = np.random.default_rng(1)
    masks = rng.uniform(size=(6, 4, 5))
    boxes = np.concatenate([rng.uniform(-4, 14, (6, 2)), rng.uniform(2, 12, (6, 2))], axis=1)
    paste = mask_ops.paste_instance_masks_v2 if v2 else mask_ops.paste_instance_masks
    pasted = paste(masks, boxes, 16, 18)
    assert pasted.dtype == np.uint8
    assert pasted.shape == (6, 16, 18)
    for i in range(6):
        np.testing.assert_array_equal(pasted[i], reference_paste(masks[i], boxes[i], 16, 18, v2))


def test_yxyx_variant_coco_utils_and_errors():
    rng = np.random.default_rng(2)
    masks = rng.uniform(size=(3, 6, 6))
    xywh = np.array([[1.5, 2.0, 8.0, 5.5], [0.0, 0.0, 3.0, 3.0], [5.0, 1.0, 0.0, 4.0]])
    yxyx = np.stack([xywh[:, 1], xywh[:, 0], xywh[:, 1] + xywh[:, 3], xywh[:, 0] + xywh[:, 2]], 1)
    pasted = mask_ops.paste_instance_masks(masks, xywh, 12, 12)
    np.testing.assert_array_equal(mask_ops.paste_instance_masks_yxyx(masks, yxyx, 12, 12), pasted)
    assert coco_utils.paste_instance_masks is mask_ops.paste_instance_masks_yxyx
    assert not pasted[2].any()  # An empty box pastes nothing.
    assert mask_ops.paste_instance_masks_v2(masks[:0], xywh[:0], 4, 5).shape == (0, 4, 5)
    with pytest.raises(ValueError, match="paste_instance_masks_v2: expected masks"):
        mask_ops.paste_instance_masks_v2(masks, xywh[:2], 12, 12)
