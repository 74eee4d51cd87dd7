"""The NonMaxSuppression helper model.py carries: onnxruntime's greedy selection, with its
float32 IoU arithmetic (same operations in the same order), no torchvision needed."""

from __future__ import annotations

import torch


def _suppression(boxes, center_point_box, iou_threshold):
    """[B, N, N] bool: box i is suppressed by a selected box j (IoU > threshold), computed as
    onnxruntime's SuppressByIOU computes it."""
    if center_point_box:
        half_w, half_h = boxes[..., 2] / 2, boxes[..., 3] / 2
        x_min, x_max = boxes[..., 0] - half_w, boxes[..., 0] + half_w
        y_min, y_max = boxes[..., 1] - half_h, boxes[..., 1] + half_h
    else:
        x_min, x_max = torch.minimum(boxes[..., 1], boxes[..., 3]), torch.maximum(boxes[..., 1], boxes[..., 3])
        y_min, y_max = torch.minimum(boxes[..., 0], boxes[..., 2]), torch.maximum(boxes[..., 0], boxes[..., 2])
    ix_min = torch.maximum(x_min[:, :, None], x_min[:, None, :])
    ix_max = torch.minimum(x_max[:, :, None], x_max[:, None, :])
    iy_min = torch.maximum(y_min[:, :, None], y_min[:, None, :])
    iy_max = torch.minimum(y_max[:, :, None], y_max[:, None, :])
    inter = (ix_max - ix_min) * (iy_max - iy_min)
    area = (x_max - x_min) * (y_max - y_min)
    union = area[:, :, None] + area[:, None, :] - inter
    valid = (ix_max > ix_min) & (iy_max > iy_min) & (inter > 0) & (union > 0)
    valid &= (area[:, :, None] > 0) & (area[:, None, :] > 0)
    return valid & (inter / union > iou_threshold)


def non_max_suppression(boxes, scores, max_per_class=None, iou_threshold=None, score_threshold=None,
                        center_point_box=0):
    """ONNX NonMaxSuppression: [selected, 3] rows (batch, class, box), per batch and class in
    descending score (ties: the lower index first), each box kept unless a kept box overlaps it."""
    limit = 0 if max_per_class is None else int(max_per_class)
    rows = []
    if limit > 0:
        iou_t = 0.0 if iou_threshold is None else float(iou_threshold)
        suppressed = _suppression(boxes, center_point_box, iou_t)
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                order = torch.sort(s, descending=True, stable=True).indices
                if score_threshold is not None:
                    order = order[s[order] > float(score_threshold)]
                overlap = suppressed[b][order][:, order]
                alive = torch.ones(order.shape[0], dtype=torch.bool)
                kept = 0
                while kept < limit:  # one pass per selected box (greedy NMS is sequential)
                    rest = alive.nonzero()
                    if rest.shape[0] == 0:
                        break
                    k = int(rest[0, 0])
                    rows.append((b, c, int(order[k])))
                    alive &= ~overlap[k]
                    alive[k] = False
                    kept += 1
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)
