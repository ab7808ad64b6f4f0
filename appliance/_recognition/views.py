"""Several crops of one detected plate, from tight to loose, for the OCR to read and pool.

The detector's box sits a little differently on each plate than the crop boxes the us_ocr model
learned from (tight real crops, jittered synthetic ones). One fixed padding reads some plates
and loses others; reading a few paddings and pooling the readings (``combine.pool_views``)
evens that out. On the 109 dev photos, us_ocr alone: 60.6 % exact at the old single padding
(0.08), 63-67 % at the best single ones, 70.6 % pooled over three views (0, 0.03, 0.06).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.models import Image

    from .detector import Box


def padding_steps(padding: float, views: int) -> list[float]:
    """``views`` paddings evenly from 0 to ``padding`` (one view: ``padding`` itself)."""
    if views <= 1:
        return [padding]
    return [padding * k / (views - 1) for k in range(views)]


def padded_crops(frame: Image, box: Box, padding: float, views: int) -> list[Image]:
    """Crops of ``box`` from the full frame, each side padded by a share of the box's width
    (twice that share of its height, as plates are ~2:1 and the top/bottom edges vary more)."""
    height, width = frame.shape[:2]
    box_w, box_h = box.x2 - box.x1, box.y2 - box.y1
    crops = []
    for share in padding_steps(padding, views):
        pad_x, pad_y = share * box_w, 2 * share * box_h
        x1, y1 = max(0, int(box.x1 - pad_x)), max(0, int(box.y1 - pad_y))
        x2, y2 = min(width, round(box.x2 + pad_x)), min(height, round(box.y2 + pad_y))
        if x2 > x1 and y2 > y1:
            crops.append(frame[y1:y2, x1:x2])
    return crops
