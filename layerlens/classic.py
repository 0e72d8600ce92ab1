"""Traditional machine learning on the CNN's own data and split: scikit-learn models on pixels or features."""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from .nets import Net
from .training import subset_indices

if TYPE_CHECKING:  # for annotations only: scikit-learn is imported when a model is built
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier


@dataclass(frozen=True)
class Knob:
    """One hyperparameter as a widget: its argument name, a label, the values on offer and what it does."""
    name: str
    label: str
    options: tuple
    default: Any
    help: str


@dataclass(frozen=True)
class ClassicModel:
    label: str
    knobs: tuple[Knob, ...]
    build: Callable[..., Any]  # (seed, **knob values) → an unfitted scikit-learn classifier


# scikit-learn is imported when a model is built (1–2 s), not when the app starts
SVM_FOLDS = 2  # folds the SVM's scores are calibrated on: every class needs this many training images


def _logistic(seed: int, C: float):
    from sklearn.linear_model import LogisticRegression

    # Newton's method: 9 steps and 0.66 s on the 4,000 sample digits, where the default lbfgs took 98 steps and 2.9 s
    # to the same 91% (the page's first render fits it beside the SVM)
    return LogisticRegression(C=C, solver="newton-cg", max_iter=300)


def _tree(seed: int, max_depth: int):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=max_depth or None, random_state=seed)


def _forest(seed: int, n_estimators: int, max_depth: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth or None, n_jobs=-1,
                                  random_state=seed)


def _knn(seed: int, n_neighbors: int):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=n_neighbors)


def _svm(seed: int, C: float):
    from .kernel_svm import KernelSVM

    # An SVM gives scores, not probabilities: Platt-calibrate them on 2 folds, then fit once on all the data (3 folds
    # took 6.1 s on the 4,000 sample digits, 2 folds 4.0 s, for the same 96.2%); KernelSVM then computes the kernel
    # matrix with numpy: 1.7 s in all, with the scoring.
    return KernelSVM(C=C, folds=SVM_FOLDS, seed=seed)


def preload() -> None:
    """Import scikit-learn's models now (1.8 s on 2 cores), e.g. on a background thread of a server that has just
    started, so that the first visitor of Traditional ML does not wait for the import."""
    for spec in MODELS.values():
        spec.build(0, **{knob.name: knob.default for knob in spec.knobs})  # building one imports its module


NO_LIMIT = 0  # max_depth 0 means "no limit"
MODELS = {
    "logistic": ClassicModel("Logistic regression", (
        Knob("C", "Regularisation C", (0.001, 0.01, 0.1, 1.0, 10.0), 0.1,
             "Smaller C keeps the weights small and smooth; larger C fits the training images more closely."),),
        _logistic),
    "tree": ClassicModel("Decision tree", (
        Knob("max_depth", "Maximum depth (0 = no limit)", (2, 4, 6, 8, 10, 12, 16, 20, NO_LIMIT), 12,
             "How many yes/no questions about single pixels one prediction may ask."),),
        _tree),
    "forest": ClassicModel("Random forest", (
        Knob("n_estimators", "Trees", (10, 30, 100, 300), 100,
             "How many trees vote; each sees a random resample of the images and of the pixels."),
        Knob("max_depth", "Maximum depth (0 = no limit)", (4, 8, 12, 16, NO_LIMIT), NO_LIMIT,
             "How many questions each tree may ask."),),
        _forest),
    "knn": ClassicModel("k-nearest neighbours", (
        Knob("n_neighbors", "Neighbours k", (1, 3, 5, 7, 9, 15), 3,
             "How many of the most similar training images vote on the answer."),),
        _knn),
    "svm": ClassicModel("SVM (RBF kernel)", (
        Knob("C", "C", (0.1, 1.0, 5.0, 10.0, 100.0), 5.0,
             "Larger C bends the boundary further to get every training image right."),),
        _svm),
}

FEATURES = {"pixels": "raw pixels", "hog": "HOG (hand-made)", "cnn": "CNN features (learned)"}
HOG_CELLS = (3, 4, 5, 6, 7, 8)  # pixels per HOG cell, on offer
HOG_CELL = 4  # the default: 7×7 cells on a 28×28 digit


@dataclass(frozen=True)
class ClassicConfig:
    """One traditional model: which, its settings, its input features and how many training images."""
    model: str
    settings: tuple[tuple[str, Any], ...] = ()  # (knob name, value); knobs not named take their default
    features: str = "pixels"
    hog_cell: int = HOG_CELL  # used when features == "hog"
    train_size: int = 0  # first train_size images of the seeded shuffle the CNN uses; 0 = all
    test_size: int = 0  # scored on the first test_size images of a seed-0 shuffle of the test set; 0 = all
    dataset: str = ""
    cnn: str = ""  # key() of the CNN whose penultimate layer gives the features (features == "cnn")
    seed: int = 0

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"Unknown model '{self.model}'; choose one of {', '.join(MODELS)}.")
        if self.features not in FEATURES:
            raise ValueError(f"Unknown features '{self.features}'; choose one of {', '.join(FEATURES)}.")
        if self.features == "cnn" and not self.cnn:
            raise ValueError("CNN features need a trained CNN: pass its config key as cnn.")
        names = {k.name for k in MODELS[self.model].knobs}
        unknown = [name for name, _ in self.settings if name not in names]
        if unknown:
            raise ValueError(f"{MODELS[self.model].label} has no setting {', '.join(unknown)}; "
                             f"it has {', '.join(sorted(names))}.")

    def values(self) -> dict[str, Any]:
        """Every knob's value: the defaults, overridden by settings."""
        return {k.name: k.default for k in MODELS[self.model].knobs} | dict(self.settings)

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def classic_config(model: str, **fields) -> ClassicConfig:
    """ClassicConfig with knob values given as keywords: classic_config("knn", n_neighbors=5, features="hog")."""
    own = {f: fields.pop(f) for f in list(fields) if f in ClassicConfig.__dataclass_fields__}
    config = ClassicConfig(model, tuple(sorted(fields.items())), **own)
    config.validate()
    return config


# What the Traditional ML page starts with, by image channels: training and test images for the traditional models,
# so that it stays interactive on big datasets (an SVM scoring 10,000 CIFAR-10 images takes 40 s: it compares each
# with every support vector).
DEFAULT_TRAIN_IMAGES = {1: 5000, 3: 1000}
TEST_IMAGES = {1: 10_000, 3: 2000}


def default_knobs() -> dict[str, dict[str, Any]]:
    """Every model's settings as the page starts: {model: {knob: default}}."""
    return {name: {k.name: k.default for k in spec.knobs} for name, spec in MODELS.items()}


def scored_test_size(channels: int, available: int) -> int:
    """How many test images the traditional models are scored on: TEST_IMAGES, or 0 (all) when there are no more."""
    return TEST_IMAGES[channels] if TEST_IMAGES[channels] < available else 0


def model_configs(dataset: str, available: int, train_size: int, test_size: int, seed: int, knobs: dict[str, dict],
                  features: str = "pixels", hog_cell: int = HOG_CELL, cnn: str = "") -> list[ClassicConfig]:
    """The five models as the page fits them: every knob named, on train_size of the `available` training images (the
    CNN's seed picks which), hog_cell only for HOG, the CNN's key only for its features."""
    return [classic_config(name, features=features, hog_cell=hog_cell if features == "hog" else HOG_CELL,
                           dataset=dataset, train_size=0 if train_size >= available else train_size,
                           test_size=test_size, seed=seed, cnn=cnn if features == "cnn" else "", **knobs[name])
            for name in MODELS]


def default_configs(dataset: str, channels: int, train_images: int, test_images: int,
                    seed: int) -> list[ClassicConfig]:
    """The five models on raw pixels that the page fits first, beside a CNN trained with seed on a dataset of
    train_images and test_images of `channels` channels."""
    return model_configs(dataset, train_images, min(DEFAULT_TRAIN_IMAGES[channels], train_images),
                         scored_test_size(channels, test_images), seed, default_knobs())


def pixel_features(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) → (N, C·H·W): every pixel is one number, and nothing says which pixels are neighbours."""
    return images.reshape(len(images), -1).numpy().astype(np.float32)


def hog_features(images: torch.Tensor, cell: int) -> np.ndarray:
    """(N, C, H, W) → (N, D) histograms of edge directions in cell×cell patches (scikit-image's HOG)."""
    from skimage.feature import hog

    size = images.shape[-1]
    if cell < 2 or 2 * cell > size:
        raise ValueError(f"A HOG cell of {cell} px does not fit {size}×{size} images: pick 2 to {size // 2} px.")
    colour = images.shape[1] == 3
    arr = images.permute(0, 2, 3, 1).numpy() if colour else images[:, 0].numpy()  # (N, H, W[, 3])
    return np.stack([hog(im, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                         channel_axis=-1 if colour else None) for im in arr]).astype(np.float32)


@torch.no_grad()
def cnn_features(model: Net, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """(N, C, H, W) → (N, D): the CNN's penultimate layer, the features its own classifier reads."""
    if model.training:  # shared models are kept in eval mode: no write to them
        model.eval()
    body = model.layers[:-1]  # every layer but the classifier
    device = next(model.parameters()).device
    return torch.cat([body(images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)]).numpy()


def feature_matrix(kind: str, images: torch.Tensor, hog_cell: int = HOG_CELL, model: Net | None = None) -> np.ndarray:
    """The rows a classic model learns from, for images: raw pixels, HOG, or the CNN's learned features."""
    if kind == "pixels":
        return pixel_features(images)
    if kind == "hog":
        return hog_features(images, hog_cell)
    if kind == "cnn":
        if model is None:
            raise ValueError("CNN features need the trained CNN.")
        return cnn_features(model, images)
    raise ValueError(f"Unknown features '{kind}'; choose one of {', '.join(FEATURES)}.")


@dataclass(frozen=True, eq=False)
class ClassicResult:
    config: ClassicConfig
    estimator: Any
    train_images: int
    fit_seconds: float
    predict_seconds: float  # for the whole test set
    probabilities: np.ndarray  # (N_test, classes)
    test_accuracy: float
    learned_numbers: int

    @property
    def label(self) -> str:
        return MODELS[self.config.model].label


def fit_classic(config: ClassicConfig, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, num_classes: int) -> ClassicResult:
    """Fit config's model on feature rows (N, D) and score it on the test rows."""
    config.validate()
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"{MODELS[config.model].label} needs training images of at least two classes; "
                         f"these {len(y_train)} have one.")
    values = config.values()
    if config.model == "knn":
        values["n_neighbors"] = min(values["n_neighbors"], len(y_train))
    estimator = MODELS[config.model].build(config.seed, **values)
    if config.model == "svm":  # calibration holds out a fold: every class needs an image in each
        rarest = int(np.bincount(y_train)[np.unique(y_train)].min())
        if rarest < SVM_FOLDS:
            raise ValueError(f"The SVM needs at least {SVM_FOLDS} training images of every class to turn its scores "
                             f"into probabilities, and one class here has {rarest}: use more training images.")
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings():
        # logistic regression may stop at max_iter before full convergence: that is its fit, not an error
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    seen = estimator.predict_proba(x_test)  # (N, classes seen in training)
    predict_seconds = time.perf_counter() - start
    probabilities = np.zeros((len(x_test), num_classes), dtype=np.float32)
    probabilities[:, estimator.classes_] = seen
    accuracy = float((probabilities.argmax(1) == y_test).mean())
    return ClassicResult(config, estimator, len(y_train), fit_seconds, predict_seconds, probabilities, accuracy,
                         learned_numbers(estimator))


def _tree_numbers(tree) -> int:
    leaves = int((tree.children_left == -1).sum())
    return 2 * (tree.node_count - leaves) + leaves * tree.n_classes[0]  # (pixel, threshold) per split + class counts


def learned_numbers(estimator) -> int:
    """How many numbers a fitted model stores to make its predictions (a kNN stores every training image)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    if isinstance(estimator, LogisticRegression):
        return estimator.coef_.size + estimator.intercept_.size
    if isinstance(estimator, DecisionTreeClassifier):
        return _tree_numbers(estimator.tree_)
    if isinstance(estimator, RandomForestClassifier):
        return sum(_tree_numbers(t.tree_) for t in estimator.estimators_)
    if isinstance(estimator, KNeighborsClassifier):
        return estimator.n_samples_fit_ * (estimator.n_features_in_ + 1)  # every image and its label
    from .kernel_svm import KernelSVM

    if isinstance(estimator, KernelSVM):
        return estimator.learned_numbers()
    raise ValueError(f"No parameter count for {type(estimator).__name__}.")


# --- learning curves ---

def curve_sizes(available: int, start: int = 100) -> list[int]:
    """Training-set sizes on a log scale, 100, 300, 1,000, 3,000, …, ending with everything available."""
    sizes, size = [], start
    while size < available:
        sizes.append(size)
        size = size * 3 if str(size)[0] == "1" else size * 10 // 3
    return sizes + [available]


def read_curves(curves: dict[str, list[tuple[int, float]]], cnn: str) -> str:
    """One honest sentence or three about a learning-curve chart: who wins with little data, who with more."""
    others = {name: dict(points) for name, points in curves.items() if name != cnn and points}
    deep = dict(curves.get(cnn, []))
    common = sorted(set(deep).intersection(*[set(p) for p in others.values()])) if others else []
    if not deep or not common:
        return "Measure the curves to compare the models."
    pct = "{:.1%}".format  # one decimal: 83.4% against 83.3% is a lead, "83% against 83%" is not
    small, large = common[0], common[-1]
    sentences = []
    for size in (small, large):
        best = max(others, key=lambda name: others[name][size])
        ahead = deep[size] >= others[best][size]
        sentences.append(f"With {size:,} training images the CNN gets {pct(deep[size])}, "
                         + (f"ahead of the best traditional model, {best} ({pct(others[best][size])})."
                            if ahead else f"behind {best} ({pct(others[best][size])})."))
    if len(common) > 1:
        gains = {name: (p[large] - p[small]) * 100 for name, p in others.items()}
        low, high = min(gains, key=gains.get), max(gains, key=gains.get)
        gain = (deep[large] - deep[small]) * 100
        sentences.append(f"Going from {small:,} to {large:,} images the CNN gained {gain:.0f} points, the "
                         f"traditional models {gains[low]:.0f} ({low}) to {gains[high]:.0f} ({high}).")
    if max(deep) > large:
        sentences.append(f"On all {max(deep):,} training images the CNN reaches {pct(deep[max(deep)])}.")
    ahead = [s for s in common if all(deep[s] >= p[s] for p in others.values())]
    if ahead == common:
        sentences.append("So on this data the CNN does not need more data than the others: it wins at every size. Its "
                         "design already assumes that nearby pixels belong together and that a pattern means the "
                         "same anywhere in the image, which the others must learn from examples.")
    elif ahead and all(s in ahead for s in common if s >= ahead[0]):
        sentences.append(f"So the CNN needs more data to shine: it beats every traditional model from {ahead[0]:,} "
                         f"images on.")
    elif not ahead:
        sentences.append("At these sizes a traditional model beats the CNN everywhere: more data, or a bigger CNN, "
                         "may change that.")
    else:
        behind = [f"{s:,}" for s in common if s not in ahead]
        sentences.append(f"So the answer is mixed here: a traditional model is ahead at {', '.join(behind)} images, "
                         f"the CNN at the other sizes.")
    return " ".join(sentences)


# --- white boxes ---

def logistic_templates(estimator: LogisticRegression, shape: tuple[int, int, int]) -> torch.Tensor:
    """A pixel logistic regression's weights as one image per class (classes, C, H, W): its templates."""
    coef = estimator.coef_  # (classes, D); with two classes one row, for the second class
    if len(coef) == 1:
        coef = np.concatenate([-coef, coef])  # the first class's score is the same sum with the sign flipped
    return torch.from_numpy(coef.reshape(len(coef), *shape)).float()


TREE_LEVELS_SHOWN = 3  # the questions of the tree's first levels that the page draws: 1 + 2 + 4 = 7


def tree_splits(estimator: DecisionTreeClassifier, depth: int = TREE_LEVELS_SHOWN) -> list[dict]:
    """The tree's first questions, breadth first: question number (1 = root), node id, depth, feature, threshold."""
    tree, found, queue = estimator.tree_, [], [(0, 1)]
    while queue:
        node, level = queue.pop(0)
        if tree.children_left[node] == -1 or level > depth:
            continue
        found.append(dict(node=len(found) + 1, id=int(node), depth=level, feature=int(tree.feature[node]),
                          threshold=float(tree.threshold[node]), images=int(tree.n_node_samples[node])))
        queue += [(tree.children_left[node], level + 1), (tree.children_right[node], level + 1)]
    return found


def pixel_name(index: int, shape: tuple[int, int, int]) -> str:
    """Feature index of a flattened (C, H, W) image → 'pixel (row 5, col 14)' (plus its colour for RGB)."""
    c, h, w = shape
    channel, rest = divmod(index, h * w)
    row, col = divmod(rest, w)
    colour = f"{('red', 'green', 'blue')[channel]} " if c == 3 else ""
    return f"{colour}pixel (row {row}, col {col})"


def tree_rules(estimator: DecisionTreeClassifier, shape: tuple[int, int, int], classes: tuple[str, ...],
               depth: int = TREE_LEVELS_SHOWN) -> str:
    """The tree's first questions as indented text, numbered as in tree_splits, with the answers below them."""
    tree = estimator.tree_
    number = {s["id"]: s["node"] for s in tree_splits(estimator, depth)}
    lines = []

    def walk(node: int, indent: str, prefix: str) -> None:
        shares = tree.value[node][0] / tree.value[node][0].sum()
        top = int(shares.argmax())
        answer = f"{classes[int(estimator.classes_[top])]} ({shares[top]:.0%} of {tree.n_node_samples[node]:,} images)"
        if tree.children_left[node] == -1:
            lines.append(f"{indent}{prefix}answer: {answer}")
        elif node not in number:
            lines.append(f"{indent}{prefix}… {tree_depth(node)} levels more, mostly {answer}")
        else:
            lines.append(f"{indent}{prefix}Q{number[node]}: is {pixel_name(int(tree.feature[node]), shape)} "
                         f"≤ {tree.threshold[node]:.3f}?")
            walk(tree.children_left[node], indent + "    ", "yes → ")
            walk(tree.children_right[node], indent + "    ", "no  → ")

    def tree_depth(node: int) -> int:
        left, right = tree.children_left[node], tree.children_right[node]
        return 0 if left == -1 else 1 + max(tree_depth(left), tree_depth(right))

    walk(0, "", "")
    return "\n".join(lines)


def nearest_neighbours(estimator: KNeighborsClassifier, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances and positions (within the training subset) of the k training images nearest one test row."""
    distances, positions = estimator.kneighbors(row.reshape(1, -1))
    return distances[0], positions[0]


def neighbour_images(knn: ClassicResult, image: torch.Tensor, available: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances to a kNN's nearest training images for image (C, H, W) on raw pixels, and their indices in the
    whole training set (the kNN learned from a seeded subset of it)."""
    distances, positions = nearest_neighbours(knn.estimator, image.reshape(-1).numpy())
    return distances, subset_indices(available, knn.config.train_size, knn.config.seed).numpy()[positions]


def cost_rows(cnn_metrics: dict, cnn_accuracy: float, cnn_seconds: float,
              fitted: dict[str, list[ClassicResult]]) -> list[dict]:
    """One row per model, the CNN first: features, training images, test accuracy, training and predicting seconds,
    and the numbers it keeps. fitted: feature kind → the traditional models fitted on it."""
    rows = [{"model": "CNN", "features": "learned from raw pixels", "training images": cnn_metrics["train_images"],
             "test accuracy": cnn_accuracy, "training (s)": cnn_metrics["train_seconds"], "predicting (s)": cnn_seconds,
             "learned numbers": cnn_metrics["params"]}]
    return rows + [{"model": r.label, "features": FEATURES[kind], "training images": r.train_images,
                    "test accuracy": r.test_accuracy, "training (s)": r.fit_seconds,
                    "predicting (s)": r.predict_seconds, "learned numbers": r.learned_numbers}
                   for kind, results in fitted.items() for r in results]


def cnn_scores_on(probabilities: np.ndarray, seconds: float, scored: torch.Tensor,
                  labels: torch.Tensor) -> tuple[np.ndarray, float, float]:
    """The CNN's probabilities for the scored test images (positions in the test set, labels theirs), the seconds
    predicting just those took (at the measured rate) and its accuracy on them."""
    picked = probabilities[scored.numpy()]
    accuracy = float((picked.argmax(1) == labels[scored].numpy()).mean())
    return picked, seconds * len(scored) / len(probabilities), accuracy


@torch.no_grad()
def cnn_test_probabilities(model: Net, images: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, float]:
    """The CNN's class probabilities for every test image (N, classes), and the seconds that took."""
    if model.training:  # shared models are kept in eval mode: no write to them
        model.eval()
    start = time.perf_counter()
    probs = torch.cat([model(images[i:i + batch_size]).softmax(1) for i in range(0, len(images), batch_size)])
    return probs.numpy(), time.perf_counter() - start
