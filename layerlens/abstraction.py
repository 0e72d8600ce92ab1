"""How abstract each layer is: can a straight line (a linear probe) separate the classes in its activations?"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .inspection import capture
from .nets import Net


def probe_layers(model: Net) -> list[str]:
    """The layers worth probing, input to output: each block's output (after pooling), dense, classifier."""
    names = [name for name, _ in model.layers.named_children()]
    return [n for n in names if n.startswith("pool") or n in ("dense_act", "classifier")]


@torch.no_grad()
def layer_features(model: Net, images: torch.Tensor, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Every probed layer's activations, flattened to one row per image (N, D); "input" is the raw pixels."""
    model.eval()
    layers = probe_layers(model)
    rows: dict[str, list[np.ndarray]] = {"input": [], **{name: [] for name in layers}}
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        with capture(model, layers) as outputs:
            model(batch)
        rows["input"].append(batch.flatten(1).numpy())
        for name in layers:
            rows[name].append(outputs[name].flatten(1).numpy())
    return {name: np.concatenate(parts) for name, parts in rows.items()}


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, train_fraction: float = 0.5,
                          seed: int = 0) -> float:
    """Held-out accuracy of a logistic regression trained on a random train_fraction of the rows."""
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(len(labels) * train_fraction)
    fit, held_out = order[:cut], order[cut:]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # stopping at max_iter still gives a fair probe
        probe.fit(features[fit], labels[fit])
    return float((probe.predict(features[held_out]) == labels[held_out]).mean())


def probe_curve(features: dict[str, np.ndarray], labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Linear-probe accuracy for every layer, in the order given (input first)."""
    return {name: linear_probe_accuracy(rows, labels, seed=seed) for name, rows in features.items()}
