"""Lessons: a short guided path across the pages, each step a question for the class and the page state that answers
it (which model, which view). Steps are data; the app turns each into a link, `python -m layerlens warm` trains
their models before class."""
from __future__ import annotations

from dataclasses import dataclass, field

from .data import SAMPLE, ImageData, shown_name
from .training import RECOMMENDED_PRESET, TrainConfig, preset_train_config


@dataclass(frozen=True)
class Step:
    """One screen of a lesson: where to go, what to ask, what the class should notice."""

    title: str
    page: str  # a page's title, as the app's navigation names it
    question: str  # asked of the class before anyone explains
    notice: str  # the answer the page shows, for the teacher
    view: dict = field(default_factory=dict)  # the page's widgets (key → value), as a link sets them
    model: dict = field(default_factory=dict)  # TrainConfig settings over the dataset's preset (e.g. train_size)
    only: tuple[str, ...] = ()  # the only Train settings students may move at this step (link names: "n", "lr", …)


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    steps: tuple[Step, ...]
    dataset: str = SAMPLE  # the offline sample: a lesson works without internet, its default model ships in models/

    def config(self, step: Step, data: ImageData) -> TrainConfig:
        """The model the step shows: the dataset's recommended preset with the step's settings."""
        if shown_name(data.name) != shown_name(self.dataset):
            raise ValueError(f"the lesson '{self.name}' is about {shown_name(self.dataset)}, not "
                             f"{shown_name(data.name)}")
        return preset_train_config(RECOMMENDED_PRESET.get(self.dataset, "tiny"), data, **step.model)

    def configs(self, data: ImageData) -> list[TrainConfig]:
        """Every model the lesson needs, each once, in the order the steps need them."""
        found: list[TrainConfig] = []
        for step in self.steps:
            config = self.config(step, data)
            if config not in found:
                found.append(config)
        return found


FIRST_LOOK = Lesson("first-look", "A first look inside a CNN", (
    Step("One neuron", "One neuron",
         "A neuron in the first layer sees 9 pixels. What does it do with them?",
         "It multiplies each pixel by a weight, adds the products and a bias, and fires (ReLU) only when the sum is "
         "above 0. Every neuron in the network does just this; only the weights differ.",
         view={"neuron_source": "Test image", "neuron_layer": "conv1"}),
    Step("Layers", "Layers",
         "This 7 goes through the network. What changes from one layer to the next?",
         "Each layer's output is the next layer's input: the maps get smaller and more numerous, and look less and "
         "less like a 7 and more like answers to questions such as 'is there a bar at the top?'.",
         view={"layers_class": 7, "layers_index": 0}),
    Step("Edges", "Filters & features",
         "Nobody told the first layer what to look for. What did its filters learn?",
         "Edges at different orientations: light on one side, dark on the other. The labels give each one's "
         "direction."),
    Step("Motifs and parts", "Filters & features",
         "What makes a channel of the last block fire?",
         "Strokes, curves and loops: parts of digits, built from the edges before them. The deeper the block, the "
         "larger the patch each neuron sees (its receptive field).", view={"features_block": 3}),
    Step("Probabilities", "Layers",
         "How sure is the network of this 4? When would it be unsure?",
         "The last layer is a classifier: softmax turns its scores into probabilities that add up to 100%. It is "
         "unsure when a digit looks like two classes; pick 🎲 Random a few times to find one.",
         view={"layers_class": 4, "layers_index": 0}),
    Step("Learning", "Learning",
         "The network starts with random weights. What does one step of learning change?",
         "It measures the error (the loss), feeds it back through every layer as gradients, and nudges every weight "
         "a little against its gradient: the right class's probability rises. Take 10 or 100 steps and watch the "
         "loss fall.", view={"learning_start": "random"}),
    Step("More data", "Train",
         "This network learned from only 1,000 images. Slide 'Training images' up: what happens to test accuracy?",
         "It rises, fast at first and then slowly: more data usually means better accuracy. Training takes longer "
         "too.", model={"train_size": 1000}, only=("n",)),
    Step("How abstract", "Abstraction",
         "At which layer can a simple straight line separate the classes?",
         "The probe accuracy rises layer by layer: pixels are hard to separate, the last layers easy. Each layer "
         "makes the classes more separable, which is what 'more abstract' means here."),
    Step("Deep versus traditional", "Traditional ML",
         "Which wins on the same images, the CNN or the traditional models? Which one can you read?",
         "The CNN, learning its own features from raw pixels. Logistic regression and the decision tree are white "
         "boxes (one template per class, readable questions) but need good features; the CNN is a black box of "
         "thousands of weights."),
))
LESSONS = {lesson.name: lesson for lesson in (FIRST_LOOK,)}
