"""Figures from labels joined to predictions: the same as scikit-learn's on the same rows.

Classification (labels and predictions compared as text: 1, 1.0 and true are all "1"):
- `prediction_accuracy`: `accuracy_score`;
- `precision`, `recall`, `f1` (label `average=macro`): `precision_recall_fscore_support(...,
  average="macro")` over the classes seen in the labels or the predictions, a class without a
  predicted (or true) row counting 0, as scikit-learn's `zero_division` default does;
- `recall` per class (label `class=<c>`), for at most MAX_CLASSES classes;
- `roc_auc` for two classes when every joined row has a score: `roc_auc_score(y_true == c, score)`
  with c the greater class (in sorted order), the class the score is the probability of.
Regression:
- `mae`, `rmse`: `mean_absolute_error`, `root_mean_squared_error`;
- `mape`: the mean of |label - prediction| / |label| over the rows whose label is not 0, with
  `mape_zero_labels` the rows left out (scikit-learn would divide by a tiny epsilon instead).
`auto` takes a task to be classification when the predictions are text, or whole numbers of at
most MAX_CLASSES distinct values; regression otherwise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

MAX_CLASSES = 50


def is_classification(task: str, predictions: np.ndarray, is_text: bool) -> bool:
    if task != "auto":
        return task == "classification"
    if is_text:
        return True
    present = predictions[~np.isnan(predictions)]
    if not len(present):
        return True
    whole = bool(np.all(np.equal(np.mod(present, 1), 0)))
    return whole and len(np.unique(present)) <= MAX_CLASSES


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve by the rank-sum (Mann-Whitney) form, ties averaged."""
    ranks = stats.rankdata(score)
    count = int(positive.sum())
    negatives = len(positive) - count
    return float((ranks[positive].sum() - count * (count + 1) / 2) / (count * negatives))


def classification(
    truth: np.ndarray, predicted: np.ndarray, score: np.ndarray | None
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """(accuracy and ROC AUC, the macro averages, recall per class) of joined rows (non-empty;
    arrays of text)."""
    classes = sorted(set(truth.tolist()) | set(predicted.tolist()))
    plain: dict[str, float] = {"prediction_accuracy": float(np.mean(truth == predicted))}
    precisions, recalls, f1s = [], [], []
    per_class: dict[str, float] = {}
    for label in classes:
        true_class, predicted_class = truth == label, predicted == label
        hits = float(np.sum(true_class & predicted_class))
        predicted_count, true_count = float(predicted_class.sum()), float(true_class.sum())
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / true_count if true_count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(f1)
        if true_count and len(per_class) < MAX_CLASSES:
            per_class[label] = recall
    macro = {
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "f1": float(np.mean(f1s)),
    }
    seen = sorted(set(truth.tolist()))
    if score is not None and len(seen) == 2 and not np.isnan(score).any():
        plain["roc_auc"] = _roc_auc(truth == seen[1], score)
    return plain, macro, per_class


def regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    errors = truth - predicted
    figures = {
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(math.sqrt(np.mean(errors * errors))),
    }
    nonzero = truth != 0
    figures["mape_zero_labels"] = float((~nonzero).sum())
    if nonzero.any():
        figures["mape"] = float(np.mean(np.abs(errors[nonzero]) / np.abs(truth[nonzero])))
    return figures
