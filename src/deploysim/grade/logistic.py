"""L2-regularised logistic regression on embeddings, fitted with scipy's L-BFGS — no sklearn.

Pure numerics used by the classifier heads (prediction) and by the training script (fit,
grouped stratified folds, nested cross-validation). The objective is the mean log-loss plus
(λ/2)·‖w‖²; the intercept is not penalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from deploysim.grade.agreement import roc_auc


@dataclass(frozen=True)
class LogisticModel:
    coef: np.ndarray  # shape (d,)
    intercept: float
    l2: float

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """P(label = 1) for each row of ``features`` (shape (n, d))."""
        if features.ndim != 2 or features.shape[1] != self.coef.shape[0]:
            raise ValueError(f"features must have shape (n, {self.coef.shape[0]}), got {features.shape}")
        return np.asarray(expit(features @ self.coef + self.intercept), dtype=np.float64)


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float) -> LogisticModel:
    """Minimise mean log-loss + (l2/2)·‖w‖² over (w, b) with L-BFGS (analytic gradient)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features (n, d) and labels (n,) expected, got {x.shape} and {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    n, d = x.shape

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = x @ w + b
        loss = -np.mean(y * log_expit(z) + (1 - y) * log_expit(-z)) + 0.5 * l2 * float(w @ w)
        residual = (expit(z) - y) / n
        grad = np.empty(d + 1)
        grad[:d] = x.T @ residual + l2 * w
        grad[d] = residual.sum()
        return float(loss), grad

    result = minimize(loss_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": 2000, "gtol": 1e-8})
    if not result.success and "ABNORMAL" not in str(result.message):
        raise RuntimeError(f"logistic fit did not converge: {result.message}")
    return LogisticModel(coef=result.x[:d].copy(), intercept=float(result.x[d]), l2=l2)


def grouped_stratified_folds(labels: Sequence[int], groups: Sequence[str], k: int,
                             seed: int) -> list[np.ndarray]:
    """Split row indices into ``k`` folds so that rows sharing a group (e.g. the same response
    text) stay together and each fold gets a similar share of positive groups."""
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    rng = np.random.default_rng(seed)
    names = list(by_group)
    rng.shuffle(names)
    positive = [g for g in names if max(labels[i] for i in by_group[g]) == 1]
    negative = [g for g in names if g not in set(positive)]
    folds: list[list[int]] = [[] for _ in range(k)]
    for offset, part in enumerate((positive, negative)):
        for j, g in enumerate(part):
            folds[(j + offset) % k].extend(by_group[g])
    return [np.array(sorted(f), dtype=np.int64) for f in folds]


def cv_predictions(features: np.ndarray, labels: np.ndarray, folds: Sequence[np.ndarray],
                   l2: float) -> np.ndarray:
    """Out-of-fold probabilities: each row is scored by a model fitted without its fold."""
    oof = np.full(labels.shape[0], np.nan)
    all_idx = np.arange(labels.shape[0])
    for test in folds:
        train = np.setdiff1d(all_idx, test)
        oof[test] = fit_logistic(features[train], labels[train], l2).predict_proba(features[test])
    return oof


def select_l2(features: np.ndarray, labels: np.ndarray, groups: Sequence[str],
              grid: Sequence[float], k: int, seed: int) -> tuple[float, dict[float, float]]:
    """The λ in ``grid`` with the highest k-fold cross-validated AUC (ties: the larger λ)."""
    folds = grouped_stratified_folds(labels.tolist(), groups, k, seed)
    aucs = {}
    for l2 in grid:
        auc = roc_auc(cv_predictions(features, labels, folds, l2).tolist(), labels.astype(bool).tolist())
        aucs[l2] = float("nan") if auc is None else auc
    best = max(sorted(grid, reverse=True), key=lambda v: aucs[v])
    return best, aucs


def nested_cv_predictions(features: np.ndarray, labels: np.ndarray, groups: Sequence[str],
                          grid: Sequence[float], k: int, seed: int) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold probabilities where λ is chosen inside each outer training split, so the
    resulting AUC is not inflated by the choice of λ. Returns (probabilities, λ per fold)."""
    outer = grouped_stratified_folds(labels.tolist(), groups, k, seed)
    oof = np.full(labels.shape[0], np.nan)
    chosen = []
    all_idx = np.arange(labels.shape[0])
    for test in outer:
        train = np.setdiff1d(all_idx, test)
        l2, _ = select_l2(features[train], labels[train], [groups[i] for i in train], grid, k - 1, seed + 1)
        chosen.append(l2)
        oof[test] = fit_logistic(features[train], labels[train], l2).predict_proba(features[test])
    return oof, chosen


def best_f1_threshold(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Threshold t maximising F1 of (p >= t) against ``labels``; returns (t, F1). t is the midpoint
    between the chosen score and the next lower one, so it does not sit on a training score."""
    order = np.argsort(-probabilities, kind="stable")
    p = probabilities[order]
    y = labels[order].astype(np.int64)
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    total_pos = int(y.sum())
    if total_pos == 0:
        raise ValueError("no positive labels: F1 is undefined")
    # only cut between distinct scores
    last_of_block = np.r_[p[1:] != p[:-1], True]
    f1s = np.where(last_of_block, 2 * tp / (tp + fp + total_pos), -1.0)
    best = int(np.argmax(f1s))
    lower = p[best + 1] if best + 1 < len(p) else 0.0
    return float((p[best] + lower) / 2), float(f1s[best])
