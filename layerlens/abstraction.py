"""How abstract each layer is: can a straight line (a linear probe) separate the classes in its activations?"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from .data import stratified_split
from .inspection import run_layers
from .nets import Net


def probe_layers(model: Net) -> list[str]:
    """The layers worth probing, input to output: each block's output (after pooling), dense, classifier."""
    names = [name for name, _ in model.layers.named_children()]
    return [block.pool for block in model.feature_info] + [n for n in ("dense_act", "classifier") if n in names]


@torch.no_grad()
def layer_features(model: Net, images: torch.Tensor, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Every probed layer's activations, flattened to one row per image (N, D); "input" is the raw pixels."""
    if model.training:  # shared models are kept in eval mode: no write to them
        model.eval()
    layers = probe_layers(model)
    rows: dict[str, list[np.ndarray]] = {"input": [], **{name: [] for name in layers}}
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        outputs = run_layers(model, batch, keep=layers)
        rows["input"].append(batch.flatten(1).numpy())
        for name in layers:
            rows[name].append(outputs[name].flatten(1).numpy())
    return {name: np.concatenate(parts) for name, parts in rows.items()}


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, train_fraction: float = 0.5,
                          seed: int = 0) -> float:
    """Held-out accuracy of a logistic regression trained on a random train_fraction of every class's rows.
    ValueError, in words, when there are too few rows to fit a probe on some and score it on others."""
    fit, held_out = stratified_split(labels, 1 - train_fraction, seed)
    if len(held_out) == 0 or len(np.unique(labels[fit])) < 2:
        raise ValueError(f"A linear probe needs more test images than the {len(labels)} here: it is fitted on half "
                         f"of them and scored on the other half, so give every class at least 2 test images.")
    scaler = StandardScaler().fit(features[fit])
    seen, unseen = in_their_span(scaler.transform(features[fit]), scaler.transform(features[held_out]))
    # Newton's method: the six probes of the default model in 0.31 s, where lbfgs took 2.3 s to the same accuracies
    probe = LogisticRegression(C=0.1, solver="newton-cg", max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # stopping at max_iter still gives a fair probe
        probe.fit(seen, labels[fit])
    return float((probe.predict(unseen) == labels[held_out]).mean())


def in_their_span(fit: np.ndarray, held_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets of rows in coordinates of the space the fitted rows span, where a layer has more values per image
    than there are fitted images (CIFAR-10's pool1: 4,096 values, 500 images). An L2-penalised linear model's weights
    lie in that span (any part outside it would only add to the penalty), so a probe fitted on 500 coordinates instead
    of 4,096 has the same weights and scores, in a fraction of the time (the Newton steps cost 500 × 500, not
    500 × 4,096): CIFAR-10's four probe curves in 1.9 s instead of 3.5 s (`benchmarks/probe_speed.py`). Up to twice
    as many values as images, where that saves nothing: the rows as they are."""
    if fit.shape[1] <= 2 * fit.shape[0] or not (np.isfinite(fit).all() and np.isfinite(held_out).all()):
        return fit, held_out  # (a diverged network's NaNs: the probe says what it says of them)
    fit, held_out = fit.astype(np.float64), held_out.astype(np.float64)
    values, vectors = np.linalg.eigh(fit @ fit.T)  # the fitted rows' Gram matrix U S² Uᵀ, where fit = U S Vᵀ
    kept = values > values[-1] * 1e-10  # leave out directions the rows hardly reach (S below 1e-5 of the largest)
    if not kept.any():  # every value the same (a layer of dead ReLUs): one constant coordinate, as the rows say
        return np.zeros((len(fit), 1), np.float32), np.zeros((len(held_out), 1), np.float32)
    scale, vectors = np.sqrt(values[kept]), vectors[:, kept]
    seen, unseen = vectors * scale, (held_out @ fit.T) @ (vectors / scale)  # fit V = U S; held_out V = held_out fitᵀ U S⁻¹
    return seen.astype(np.float32), unseen.astype(np.float32)  # the probe fits float32 rows faster, to the same scores


def probe_curve(features: dict[str, np.ndarray], labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Linear-probe accuracy for every layer, in the order given (input first)."""
    return {name: linear_probe_accuracy(rows, labels, seed=seed) for name, rows in features.items()}


def embedding_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, D) activations → (N, 2) points to plot: PCA (a linear view, instant) or t-SNE (keeps neighbours
    together, slower). t-SNE starts from 50 PCA components, as its authors recommend for wide inputs."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rows = StandardScaler().fit_transform(features)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(rows)
    if method == "tsne":
        if rows.shape[1] > 50:  # t-SNE on at most 50 principal components (no more than there are images)
            rows = PCA(n_components=min(50, len(rows)), random_state=seed).fit_transform(rows)
        return TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(rows) - 1) / 3), random_state=seed,
                    max_iter=500).fit_transform(rows)
    raise ValueError(f"Unknown map '{method}'; choose pca or tsne.")


def class_separation(features: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score of the classes in these activations: near 1 = tight, separate clusters; near 0 or
    below = classes mixed together; NaN where it is undefined (one class, or one image per class)."""
    from sklearn.metrics import silhouette_score

    if not 2 <= len(np.unique(labels)) < len(labels):  # undefined: one class, or as many classes as images
        return float("nan")
    return float(silhouette_score(StandardScaler().fit_transform(features), labels))
