"""Classification metrics: accuracy, top-k accuracy, confusion matrix, per-class precision/recall/F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _as_long(x: Any) -> torch.Tensor:
    return x.detach().long().cpu().flatten() if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.long)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the truth (0.0 for no samples)."""
    t, p = _as_long(y_true), _as_long(y_pred)
    if t.numel() != p.numel():
        raise ValueError(f"accuracy: {t.numel()} labels but {p.numel()} predictions")
    return int((t == p).sum()) / t.numel() if t.numel() else 0.0


def topk_accuracy(logits: torch.Tensor, y_true: Any, k: int = 5) -> float | None:
    """Fraction of samples whose true class is among the k highest scores; None when there are fewer than k classes."""
    logits = torch.as_tensor(logits)
    if logits.ndim != 2 or logits.shape[1] < k:
        return None
    t = _as_long(y_true).to(logits.device)
    if t.numel() == 0:
        return 0.0
    top = logits.topk(k, dim=1).indices
    return int((top == t[:, None]).any(dim=1).sum()) / t.numel()


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> list[list[int]]:
    """Counts as a list of lists: rows are true classes, columns predicted classes."""
    t, p = _as_long(y_true), _as_long(y_pred)
    if t.numel() != p.numel():
        raise ValueError(f"confusion_matrix: {t.numel()} labels but {p.numel()} predictions")
    for name, v in (("label", t), ("prediction", p)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= num_classes):
            raise ValueError(f"confusion_matrix: {name} outside 0..{num_classes - 1}")
    cm = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).tolist()


def _div(a: float, b: float) -> float:
    return a / b if b else 0.0


def per_class(cm: Sequence[Sequence[int]], class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A ratio whose denominator is 0 is None, not 0: the recall of a class without images here, the precision of a
    class never predicted (shown as "—"). F1 is 0.0 then for a class that occurs (in the labels or the
    predictions), as scikit-learn's zero_division=0; all three are None for a class that does not occur at all
    (a class the model knows but the evaluated folder lacks, never predicted)."""
    n = len(cm)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"per_class: {n} classes in the matrix but {len(names)} names")
    out = []
    for i in range(n):
        tp = cm[i][i]
        support = sum(cm[i])
        predicted = sum(cm[r][i] for r in range(n))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = None
        if support or predicted:
            f1 = (
                _div(2 * precision * recall, precision + recall)
                if precision is not None and recall is not None
                else 0.0
            )
        out.append({"name": names[i], "precision": precision, "recall": recall, "f1": f1, "support": int(support)})
    return out


def macro(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Unweighted means of precision, recall and F1 over the classes that occur (in the labels or the predictions),
    an undefined ratio counting 0: scikit-learn's macro average (zero_division=0), so a model that predicts one
    class for everything is not flattered. 0.0 when no class occurs."""
    rows = [r for r in rows if r["f1"] is not None]
    return {k: _div(sum(r[k] or 0.0 for r in rows), len(rows)) for k in ("precision", "recall", "f1")}
