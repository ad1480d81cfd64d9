"""Pasting per-box instance masks onto the image (Model Garden's `ops.mask_ops`).

Mask R-CNN predicts each instance mask as a small `mask_height x mask_width` grid
stretched over the detected box. Evaluation needs full-image binary masks: these functions
paste each grid onto an `image_height x image_width` canvas, with NumPy (no TensorFlow, no
OpenCV), one mask at a time.

Mask cell `(i, j)` covers the box area `[ymin + i * h / mask_height, ymin + (i + 1) * h /
mask_height)` (likewise in x), so its value sits at that cell's center; an image pixel
takes the bilinear interpolation of the grid at its own center `(row + 0.5, col + 0.5)`
and is foreground where that value is above the threshold (0.5). The two versions differ
at the border, as Model Garden's do:

- `paste_instance_masks` (and `paste_instance_masks_yxyx`): pixels whose centers lie
  strictly inside the box; past the outer cell centers the grid is held constant (edge
  values). A mask of ones fills exactly the pixels whose centers are inside the box.
- `paste_instance_masks_v2`: every pixel the box touches; the grid is surrounded by
  zeros, so values fade to 0 over the half cell at the border (Model Garden's
  `cv2.warpPerspective` formulation, computed exactly here instead of on OpenCV's
  1/32-pixel grid).

Boxes follow Model Garden's calls: `[x, y, width, height]` (COCO) for the two Model
Garden names; `paste_instance_masks_yxyx` takes Garden's `[ymin, xmin, ymax, xmax]`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "paste_instance_masks",
    "paste_instance_masks_v2",
    "paste_instance_masks_yxyx",
]


def _bilinear_sample(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Samples `grid` [H, W] bilinearly at every (row, col) of the outer product, edge-clamped."""
    height, width = grid.shape
    rows = np.clip(rows, 0.0, height - 1.0)
    cols = np.clip(cols, 0.0, width - 1.0)
    row0 = np.floor(rows).astype(np.int64)
    col0 = np.floor(cols).astype(np.int64)
    row1 = np.minimum(row0 + 1, height - 1)
    col1 = np.minimum(col0 + 1, width - 1)
    row_weight = (rows - row0)[:, None]
    col_weight = (cols - col0)[None, :]
    top = grid[row0][:, col0] * (1.0 - col_weight) + grid[row0][:, col1] * col_weight
    bottom = grid[row1][:, col0] * (1.0 - col_weight) + grid[row1][:, col1] * col_weight
    return top * (1.0 - row_weight) + bottom * row_weight


def _check(masks, boxes, name: str) -> tuple[np.ndarray, np.ndarray]:
    masks = np.asarray(masks, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    if masks.ndim != 3 or boxes.shape != (masks.shape[0], 4):
        raise ValueError(
            f"{name}: expected masks [N, mask_height, mask_width] and boxes [N, 4]; got "
            f"{masks.shape} and {boxes.shape}"
        )
    return masks, boxes


def paste_instance_masks_yxyx(
    masks: np.ndarray,
    boxes: np.ndarray,
    image_height: int,
    image_width: int,
    threshold: float = 0.5,
) -> np.ndarray:
    """Pastes per-box mask grids onto the image as binary masks (boxes `[ymin, xmin, ymax, xmax]`).

    Every image pixel whose center lies inside the box takes the grid's value there,
    interpolated bilinearly between cell centers (held constant past the outer cell
    centers), and is set where that value is above `threshold`; pixels outside the box
    stay 0.

    Args:
        masks: [N, mask_height, mask_width] mask probabilities (or 0/1) relative to `boxes`.
        boxes: [N, 4] boxes [ymin, xmin, ymax, xmax] in pixels of the image.
        image_height: The image height in pixels.
        image_width: The image width in pixels.
        threshold: Values above it are foreground.

    Returns:
        A uint8 array [N, image_height, image_width] of 0/1.

    Raises:
        ValueError: If the shapes do not fit together.
    """
    masks, boxes = _check(masks, boxes, "paste_instance_masks")
    count, mask_height, mask_width = masks.shape
    pasted = np.zeros((count, int(image_height), int(image_width)), dtype=np.uint8)
    centres_y = np.arange(int(image_height)) + 0.5
    centres_x = np.arange(int(image_width)) + 0.5
    for index in range(count):
        ymin, xmin, ymax, xmax = boxes[index]
        box_height, box_width = ymax - ymin, xmax - xmin
        if not (box_height > 0 and box_width > 0):
            continue
        rows = np.flatnonzero((centres_y > ymin) & (centres_y < ymax))
        cols = np.flatnonzero((centres_x > xmin) & (centres_x < xmax))
        if rows.size == 0 or cols.size == 0:
            continue
        # Pixel centres in grid coordinates, where cell centres sit at 0, 1, ...
        grid_rows = (centres_y[rows] - ymin) / box_height * mask_height - 0.5
        grid_cols = (centres_x[cols] - xmin) / box_width * mask_width - 0.5
        values = _bilinear_sample(masks[index], grid_rows, grid_cols)
        pasted[index, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = values > threshold
    return pasted


def _xywh_to_yxyx(boxes: np.ndarray) -> np.ndarray:
    x, y, width, height = (boxes[:, i] for i in range(4))
    return np.stack([y, x, y + height, x + width], axis=-1)


def paste_instance_masks(
    masks: np.ndarray,
    detected_boxes: np.ndarray,
    image_height: int,
    image_width: int,
    threshold: float = 0.5,
) -> np.ndarray:
    """Pastes per-box mask grids onto the image (Model Garden's call: COCO boxes).

    The same pasting as `paste_instance_masks_yxyx`, for boxes given as Model Garden's
    `coco_utils` passes them.

    Args:
        masks: [N, mask_height, mask_width] mask probabilities relative to the boxes.
        detected_boxes: [N, 4] boxes [x, y, width, height] in image pixels.
        image_height: The image height in pixels.
        image_width: The image width in pixels.
        threshold: Values above it are foreground.

    Returns:
        A uint8 array [N, image_height, image_width] of 0/1.

    Raises:
        ValueError: If the shapes do not fit together.
    """
    masks, detected_boxes = _check(masks, detected_boxes, "paste_instance_masks")
    return paste_instance_masks_yxyx(
        masks, _xywh_to_yxyx(detected_boxes), image_height, image_width, threshold
    )


def paste_instance_masks_v2(
    masks: np.ndarray,
    detected_boxes: np.ndarray,
    image_height: int,
    image_width: int,
    threshold: float = 0.5,
) -> np.ndarray:
    """Pastes mask grids onto every pixel their boxes touch, fading to 0 at the border.

    The grid is mapped onto the box exactly (cell `(i, j)` centered at `(ymin + (i + 0.5)
    * h / mask_height, xmin + (j + 0.5) * w / mask_width)`) and surrounded by zeros. Every
    pixel from `floor(xmin)` to `ceil(xmin + w)` (likewise in y) takes the bilinear
    interpolation at its center and is set where it is above `threshold`.

    Args:
        masks: [N, mask_height, mask_width] mask probabilities relative to the boxes.
        detected_boxes: [N, 4] boxes [x, y, width, height] in image pixels.
        image_height: The image height in pixels.
        image_width: The image width in pixels.
        threshold: Values above it are foreground.

    Returns:
        A uint8 array [N, image_height, image_width] of 0/1.

    Raises:
        ValueError: If the shapes do not fit together.
    """
    masks, detected_boxes = _check(masks, detected_boxes, "paste_instance_masks_v2")
    count, mask_height, mask_width = masks.shape
    image_height, image_width = int(image_height), int(image_width)
    pasted = np.zeros((count, image_height, image_width), dtype=np.uint8)
    for index in range(count):
        xmin, ymin, width, height = detected_boxes[index]
        if not (width > 0 and height > 0):
            continue
        row_start = max(math.floor(ymin), 0)
        row_stop = min(math.ceil(ymin + height), image_height)
        col_start = max(math.floor(xmin), 0)
        col_stop = min(math.ceil(xmin + width), image_width)
        if row_start >= row_stop or col_start >= col_stop:
            continue
        centres_y = np.arange(row_start, row_stop) + 0.5
        centres_x = np.arange(col_start, col_stop) + 0.5
        # Grid coordinates of the pixel centres; +1 for the ring of zeros around the grid.
        grid_rows = (centres_y - ymin) * mask_height / height - 0.5 + 1.0
        grid_cols = (centres_x - xmin) * mask_width / width - 0.5 + 1.0
        padded = np.pad(masks[index], 1)
        values = _bilinear_sample(padded, grid_rows, grid_cols)
        pasted[index, row_start:row_stop, col_start:col_stop] = values > threshold
    return pasted
