"""One sentence per figure, in numbers, from the same data the figure is drawn from (plots.py): what a screen reader
reads, and what the back row reads when the chart is too small to see. Each function is named after its figure."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch

from .classic import pixel_name
from .formatting import percent, plural
from .training import History

EDGE_WORDS = {"—": "horizontal", "|": "vertical", "╲": "falling diagonal", "╱": "rising diagonal", "blob": "blob"}


def _n(value: float, digits: int = 2) -> str:
    """A number with a real minus sign, which screen readers say as "minus" (and no "−0.00")."""
    text = f"{value:.{digits}f}"
    return (text.lstrip("-") if float(text) == 0 else text).replace("-", "−")


def _g(value: float) -> str:
    """A number of any size in 2 significant digits (gradients: 0.0031, 2.4e-05)."""
    return f"{value:.2g}".replace("-", "−")


def _span(values) -> str:
    """'from −0.84 to 0.91' for a tensor or array ('from −0.0071 to 0.0023' for small ones, such as gradients)."""
    v = torch.as_tensor(values).float()
    low, high = float(v.min()), float(v.max())
    number = _g if max(abs(low), abs(high)) < 0.1 else _n
    return f"from {number(low)} to {number(high)}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _listed(items: list[str]) -> str:
    """['a', 'b', 'c'] → 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _first_bad_step(losses: list[float]) -> int | None:
    """The first step (1-based) whose loss is not a number (the run diverged there), or None."""
    return next((i for i, v in enumerate(losses, start=1) if not math.isfinite(v)), None)


def _loss_ends(losses: list[float]) -> tuple[float, float]:
    """The mean loss of the first and of the last few steps (up to 10 each): one batch alone is noisy."""
    n = max(1, min(10, len(losses) // 10))
    return _mean(losses[:n]), _mean(losses[-n:])


def history_summary(history: History) -> str:
    """history_figure: how far the loss fell and the accuracy reached."""
    losses = history.step_loss
    if not losses:
        return "No training steps recorded."
    broken = _first_bad_step(losses)
    if broken:
        return (f"Loss went from {_n(losses[0])} to not-a-number at step {broken:,} of {len(losses):,}: training "
                "diverged.")
    first, last = _loss_ends(losses)
    text = (f"Loss {'fell' if last < first else 'rose'} from {_n(first)} (first steps) to {_n(last)} (last steps) "
            f"over {len(losses):,} steps ({plural(history.epochs, 'epoch')})")
    if history.epoch_test_accuracy:
        text += (f"; test accuracy {percent(history.epoch_test_accuracy[-1])}, train "
                 f"{percent(history.epoch_train_accuracy[-1])}")
    return text + "."


def live_loss_summary(losses: list[float], total_steps: int) -> str:
    """live_loss_figure, while the training runs: where the loss started and where it is now."""
    if not losses:
        return "No training steps yet."
    broken = _first_bad_step(losses)
    if broken:
        return f"Loss went from {_n(losses[0])} to not-a-number at step {broken:,}: this training is diverging."
    first, last = _loss_ends(losses)
    return (f"Training loss so far: {'down' if last < first else 'up'} from {_n(first)} (first steps) to {_n(last)} "
            f"(latest steps), step {len(losses):,} of {total_steps:,}.")


def architecture_summary(rows: list[dict]) -> str:
    """architecture_figure: the chain of layers from image to scores, and where the weights are."""
    convs = [r for r in rows if r["kind"] == "Conv2d"]
    dense = [r for r in rows if r["kind"] == "Linear"]
    weights = {r["layer"]: r["parameters"] for r in rows if r["parameters"]}
    most = max(weights, key=weights.get)
    channels = ", ".join(r["output shape"].split("×")[0] for r in convs)
    return (f"A {rows[0]['output shape']} image → {plural(len(convs), 'conv layer')} ({channels} channels) → "
            f"{plural(len(dense), 'dense layer')} → {rows[-1]['output shape']} class scores; "
            f"{sum(weights.values()):,} learned weights, the most in {most} ({weights[most]:,}).")


def _worst_mix_up(counts: np.ndarray, classes) -> tuple[str, int]:
    off = counts.copy()
    np.fill_diagonal(off, 0)
    true, said = np.unravel_index(int(off.argmax()), off.shape)
    return f"{classes[true]} read as {classes[said]}", int(off[true, said])


def confusion_summary(counts: torch.Tensor, classes: tuple[str, ...], what: str = "test images") -> str:
    """confusion_figure: how many are right, and the most common mistake."""
    c = counts.cpu().numpy()
    total, right = int(c.sum()), int(np.trace(c))
    text = f"Right on {percent(right / max(total, 1))} of {total:,} {what}"
    if right == total:
        return text + ": no mistakes."
    mix_up, times = _worst_mix_up(c, classes)
    return text + f"; most confused: {mix_up} ({plural(times, 'time')})."


def confusion_grid_summary(matrices: list[tuple[str, torch.Tensor]], classes: tuple[str, ...]) -> str:
    """confusion_grid: each model's share right, and the mistake they make most together."""
    counts = [c.cpu().numpy() for _, c in matrices]
    total = int(counts[0].sum())
    scores = ", ".join(f"{name} {percent(np.trace(c) / max(total, 1))}" for (name, _), c in zip(matrices, counts))
    text = f"Right on the same {total:,} test images: {scores}"
    together = sum(counts)
    if np.trace(together) == together.sum():
        return text + "."
    mix_up, times = _worst_mix_up(together, classes)
    return text + f"; the most common mistake: {mix_up} ({plural(times, 'time')}, all models together)."


def feature_maps_summary(maps: torch.Tensor, name: str) -> str:
    """feature_grid of one layer's maps (C, H, W): their range, the strongest channel, the silent ones."""
    maps = maps.detach().float()
    c, h, w = maps.shape
    peaks = maps.flatten(1).max(1).values  # (C,)
    strongest, silent = int(peaks.argmax()), int((peaks <= 0).sum())
    text = (f"{name}: {c} maps of {h}×{w}, values {_span(maps)}; the strongest is channel {strongest} "
            f"(peak {_n(float(peaks[strongest]))})")
    return text + (f"; {silent} of {c} never rise above 0." if silent else ".")


def input_kernels_summary(weights: torch.Tensor, name: str) -> str:
    """feature_grid of one deeper channel's kernels (C_in, k, k): which earlier map it weighs most."""
    weights = weights.detach().float()
    size = weights.abs().flatten(1).sum(1)  # (C_in,)
    top = int(size.argmax())
    return (f"{name}: {plural(weights.shape[0], 'kernel')} of {weights.shape[1]}×{weights.shape[2]}, weights "
            f"{_span(weights)}; it weighs input map {top} most (total size {_n(float(size[top]))}).")


def image_summary(image: torch.Tensor, label: str | None = None) -> str:
    """image_figure: the image's size, its label and how much ink or colour it holds."""
    c, h, w = image.shape
    labelled = f" labelled '{label}'" if label is not None else ""
    if c == 1:
        return (f"A {h}×{w} grey image{labelled}; {float((image > 0.5).float().mean()):.0%} of its pixels are "
                "brighter than mid-grey.")
    r, g, b = image.float().mean(dim=(1, 2)).tolist()
    return f"A {h}×{w} colour image{labelled}; mean red {_n(r)}, green {_n(g)}, blue {_n(b)} (0 dark, 1 full)."


def vector_summary(values: torch.Tensor, name: str) -> str:
    """vector_figure: how many neurons fire, and the strongest."""
    v = values.detach().float().flatten()
    best = int(v.argmax())
    return (f"{name}: {int((v > 0).sum())} of {len(v)} neurons above 0; the strongest, neuron {best}, at "
            f"{_n(float(v[best]))}.")


def probability_summary(probs: torch.Tensor, classes: tuple[str, ...], top: int = 3) -> str:
    """probability_figure: the most likely classes with their probabilities."""
    p = probs.detach().float().flatten()
    order = [i for i in p.argsort(descending=True)[:top].tolist() if p[i] >= 0.005] or [int(p.argmax())]
    named = [f"{classes[i]} ({float(p[i]):.0%})" for i in order]  # those that round to 0% are left out
    return f"Most likely {named[0]}" + (f", then {_listed(named[1:])}." if len(named) > 1 else ".")


def before_after_summary(before: torch.Tensor, after: torch.Tensor, classes: tuple[str, ...], target: int) -> str:
    """before_after_figure: the target class's probability before and after the step, and the top answer."""
    b, a = int(before.argmax()), int(after.argmax())
    return (f"One step moves '{classes[target]}' from {float(before[target]):.1%} to {float(after[target]):.1%}; "
            f"the top answer goes from '{classes[b]}' ({float(before[b]):.0%}) to '{classes[a]}' "
            f"({float(after[a]):.0%}).")


def depth_summary(blocks: list[tuple[int, int, int]]) -> str:
    """depth_figure: per block (number, receptive field in px, patches shown), what one neuron sees."""
    parts = [f"block {block}, {count} patch{'' if count == 1 else 'es'} of {size}×{size} px"
             for block, size, count in blocks]
    return f"Test patches where each block's strongest channels fire hardest: {'; '.join(parts)}."


def kernels_summary(kernels: torch.Tensor, labels: list[str] | None = None, what: str = "kernels",
                    names: list[str] | None = None) -> str:
    """image_grid of kernels (N, C, k, k) (or gradients, or templates): their range, and their edge directions
    (labels from features.orientation_label) or the strongest one."""
    k = kernels.detach().float()
    n, c, h, w = k.shape
    colours = " in colour" if c == 3 else ""
    text = f"{n} {what} of {h}×{w}{colours}, values {_span(k)}"
    if labels:
        counts = Counter(EDGE_WORDS.get(label, label) for label in labels)
        return text + "; " + ", ".join(f"{count} {word}" for word, count in counts.most_common()) + "."
    strongest = int(k.flatten(1).norm(dim=1).argmax())
    return text + f"; the strongest is {names[strongest] if names else f'number {strongest}'}."


def filmstrip_summary(kernels: list[torch.Tensor], epoch: int) -> str:
    """image_grid of the first-layer kernels after one epoch: how far they are from the random start."""
    start, now, final = kernels[0].float(), kernels[epoch].float(), kernels[-1].float()
    gone = float((now - start).norm() / max(float((final - start).norm()), 1e-12))
    when = "at the random start" if epoch == 0 else f"after epoch {epoch} of {len(kernels) - 1}"
    return (f"The {len(now)} first-layer kernels {when}: weights {_span(now)}, {gone:.0%} of the distance from "
            "the random start that training finally covers.")


def patches_summary(block: int, field: int, found: list[list[str]], first: int, grown: bool) -> str:
    """image_grid of the top test patches per channel (found: per channel, the classes of its patches)."""
    every = Counter(name for classes in found for name in classes)
    top, count = every.most_common(1)[0]
    pure = sum(len(set(classes)) == 1 for classes in found)
    wants = "the image grown to excite it and " if grown else ""
    return (f"Channels {first}–{first + len(found) - 1} of block {block}, each with {wants}its {len(found[0])} top "
            f"test patches of {field}×{field} px; most patches are '{top}' ({count} of {sum(every.values())}); all "
            f"patches come from one class in {pure} of {len(found)} channels.")


def layer_epochs_summary(per_layer: dict[str, list[float]], what: str) -> str:
    """layer_epochs_figure (and settling_figure): each layer's value after the first and the last epoch."""
    shown = {name: v for name, v in per_layer.items() if len(v) > 1}
    if not shown:
        return f"No {what} recorded."
    last = max(len(v) for v in shown.values()) - 1
    values = ", ".join(f"{name} {_n(v[1])} → {_n(v[-1])}" for name, v in shown.items())
    return f"{what.capitalize()} after epoch 1 → epoch {last}: {values}."


def layer_values_summary(values: dict[str, float], what: str) -> str:
    """layer_bars_figure: one value per layer, input side first; the largest and smallest."""
    big, small = max(values, key=values.get), min(values, key=values.get)
    listed = ", ".join(f"{name} {_g(v)}" for name, v in values.items())
    ratio = values[big] / values[small] if values[small] > 0 else math.inf
    times = f"{ratio:.1f}×" if ratio < 10 else f"{ratio:,.0f}×"
    return (f"{what.capitalize()} per layer, input side first: {listed}; the largest, {big}, is "
            + (f"{times} the smallest ({small})." if math.isfinite(ratio) else f"far above {small}."))


def gradient_norm_summary(grad_norm: dict[str, list[float]]) -> str:
    """gradient_norm_figure: each layer's gradient size in the first and the last tenth of training."""
    parts = []
    for name, norms in grad_norm.items():
        finite = [v for v in norms if math.isfinite(v)]
        if finite:
            tenth = max(1, len(finite) // 10)
            parts.append(f"{name} {_g(_mean(finite[:tenth]))} → {_g(_mean(finite[-tenth:]))}")
    if not parts:
        return "No gradients recorded."
    return f"Gradient size, first → last tenth of training: {', '.join(parts)}."


def steps_summary(losses: list[float], checks: list[tuple[int, float]]) -> str:
    """steps_figure: the loss of the steps taken, and test accuracy along the way."""
    broken = _first_bad_step(losses)
    loss = (f"loss {_n(losses[0])} → not a number from step {broken}" if broken
            else f"loss {_n(losses[0])} → {_n(losses[-1])}")
    return (f"{plural(len(losses), 'step')} taken: {loss}; test accuracy {percent(checks[0][1])} → "
            f"{percent(checks[-1][1])}.")


def accuracy_summary(rows: list[dict], cnn_accuracy: float) -> str:
    """accuracy_figure: the CNN's test accuracy, the best and the weakest traditional model."""
    best, worst = max(rows, key=lambda r: r["accuracy"]), min(rows, key=lambda r: r["accuracy"])
    return (f"Test accuracy: CNN {percent(cnn_accuracy)}; best traditional model {best['model']} on "
            f"{best['features']}, {percent(best['accuracy'])}; weakest {worst['model']} on {worst['features']}, "
            f"{percent(worst['accuracy'])}.")


def learning_curve_summary(curves: dict[str, list[tuple[int, float]]]) -> str:
    """learning_curve_figure: each model's test accuracy with the fewest and the most training images."""
    parts = [f"{name} {percent(points[0][1])} ({points[0][0]:,}) → {percent(points[-1][1])} ({points[-1][0]:,})"
             for name, points in curves.items() if points]
    return f"Test accuracy, fewest → most training images: {'; '.join(parts)}."


def probe_summary(curves: dict[str, dict[str, float]], chance: float) -> str:
    """probe_figure: each network's probe accuracy at the input and at the output."""
    parts = [f"{name} {percent(next(iter(c.values())))} → {percent(list(c.values())[-1])}"
             for name, c in curves.items()]
    layers = next(iter(curves.values()))
    return (f"Linear-probe accuracy, {next(iter(layers))} → {list(layers)[-1]}: {'; '.join(parts)}; guessing "
            f"{percent(chance)}.")


def maps_summary(scores: dict[str, float], images: int) -> str:
    """maps_figure: the class separation at the first and last layer, and where it is highest."""
    names = list(scores)
    text = f"{images:,} test images mapped at {plural(len(names), 'layer')}"
    defined = {name: score for name, score in scores.items() if math.isfinite(score)}
    if len(defined) < len(names):  # one class, or one image per class: no silhouette
        return text + "; the separation is undefined for so few images or classes."
    best = max(scores, key=scores.get)
    return (text + f"; separation (silhouette) {_n(scores[names[0]])} at {names[0]} → {_n(scores[names[-1]])} at "
            f"{names[-1]}, highest at {best} ({_n(scores[best])}).")


def picked_summary(labels: list[str], shown: int) -> str:
    """image_grid of picked test images (labels: the class of each one picked): how many of each class."""
    counts = ", ".join(f"{count} '{label}'" for label, count in Counter(labels).most_common())
    return (f"{plural(len(labels), 'picked test image')}: {counts}"
            + (f"; {shown} of them shown." if shown < len(labels) else "."))


def neighbours_summary(labels: list[str], distances) -> str:
    """image_grid of a test image's nearest training images: their classes and distances, and the vote."""
    vote, count = Counter(labels).most_common(1)[0]
    near = ", ".join(f"'{label}' ({_n(float(d), 1)})" for label, d in zip(labels, distances))
    return (f"Its {len(labels)} nearest training images by distance: {near}; the vote: '{vote}' ({count} of "
            f"{len(labels)}).")


def tree_summary(splits: list[dict], shape: tuple[int, int, int]) -> str:
    """split_pixels_figure: how many questions, about how many pixels, and the first one."""
    if not splits:
        return "The tree asks no question: it gives every image the same answer."
    root = splits[0]
    pixels = len({s["feature"] for s in splits})
    return (f"The tree's first {len(splits)} questions ask about {plural(pixels, 'pixel')}; the first, asked of all "
            f"{root['images']:,} training images: is {pixel_name(root['feature'], shape)} ≤ "
            f"{_n(root['threshold'])}?")


def arithmetic_summary(inputs: torch.Tensor, weights: torch.Tensor) -> str:
    """arithmetic_figure: the products' sum and the biggest one."""
    products = (inputs * weights).detach().float()
    row, col = divmod(int(products.abs().argmax()), products.shape[-1])
    return (f"{products.shape[0]}×{products.shape[1]} inputs × weights: the {products.numel()} products add up to "
            f"{_n(float(products.sum()), 3)}; the biggest, {_n(float(products[row, col]), 3)}, at row {row}, "
            f"column {col}.")


def contribution_summary(values: torch.Tensor, labels: list[str]) -> str:
    """contribution_figure: how many inputs add and take away, the biggest of each, and the total."""
    v = values.detach().float()
    up, down = int(v.argmax()), int(v.argmin())
    adds, takes = int((v > 0).sum()), int((v < 0).sum())
    text = f"{plural(len(v), 'input')}: {adds} add{'s' if adds == 1 else ''} to the sum"
    text += f" (most: {labels[up]}, +{_n(float(v[up]))})" if adds else ""
    text += f", {takes} take{'s' if takes == 1 else ''} away" + (
        f" (most: {labels[down]}, {_n(float(v[down]))})" if takes else "")
    return text + f"; together {_n(float(v.sum()))}."


def activation_summary(activation: torch.nn.Module, name: str, value: float) -> str:
    """activation_figure: this neuron's sum through the activation."""
    with torch.no_grad():
        out = float(activation(torch.tensor([value]))[0])
    return f"{name}({_n(value)}) = {_n(out)}: this neuron {'fires' if out > 0 else 'stays silent'}."


def heatmap_summary(values: torch.Tensor, what: str) -> str:
    """A map over the image (H, W), such as occlusion or saliency: where it peaks and how concentrated it is."""
    v = values.detach().float()
    h, w = v.shape
    row, col = divmod(int(v.argmax()), w)
    ranked = v.flatten().clamp(min=0).sort(descending=True).values
    share = float(ranked[:max(1, len(ranked) // 10)].sum()) / max(float(ranked.sum()), 1e-12)
    return f"{what} peaks at row {row}, column {col} of {h}×{w}; the top tenth of the pixels hold {share:.0%} of it."
