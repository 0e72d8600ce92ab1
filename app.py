"""LayerLens: train a small CNN in seconds and look inside every layer. Run: streamlit run app.py"""
import layerlens  # noqa: F401 - first, before torch: OpenMP threads sleep when idle (layerlens/__init__.py)
import streamlit as st

import session

session.page_setup("Home")

st.title("🔬 LayerLens: see how a deep network learns")
st.markdown(
    """
A **neural network** is layers of tiny calculators called *neurons*. Each neuron **weighs** its
inputs, **adds** them up with a **bias**, and "fires" through an **activation** function. Each layer's
output is the next layer's input.

A **convolutional network** (CNN) slides small weight patterns, called *filters*, over an image.
The first layer learns filters that find **edges** at different orientations; the next layer combines
edges into **motifs** like corners and curves; deeper layers find **parts**; the last layer is a
**classifier** that turns all of this into probabilities: *"90% likely a 7"*.

Nobody writes these filters by hand. **Learning** means finding weights that map inputs to the
right answers: the network guesses, measures its error, feeds the error back through every layer and
nudges every weight a little, thousands of times. More examples usually mean better accuracy.

**Deep versus traditional.** Traditional machine learning (logistic regression, decision trees,
nearest neighbours, SVMs) works on **features** that people choose or design, often on smaller data, and
many of its models are *white boxes*: you can read how they decide. A deep network learns its own features
from raw pixels, usually wants more data, and is a *black box*: millions of weights that mean little
one by one. The **Traditional ML** page measures both on the same images instead of taking this on trust.

**How big is a network?** The default one here has about 15,000 weights; LeCun's LeNet (1998) had
about 60,000; image models today have millions and language models billions. How many layers, how
wide each one is and how they connect is the designer's choice: on the **Train** page, it is yours.
"""
)
st.subheader("Try it")
LINKS = [("pages/1_train.py", "**Train**: move sliders, retrain in seconds, watch the loss fall", "🏋️"),
         ("pages/2_layers.py", "**Layers**: pick an image and follow it through every layer", "🧅"),
         ("pages/3_features.py", "**Filters & features**: what each channel has learned", "🔎"),
         ("pages/4_classic.py", "**Traditional ML**: five classic models against the CNN, measured", "⚖️"),
         ("pages/5_neuron.py", "**One neuron**: draw a digit, follow the arithmetic to the answer", "🔢"),
         ("pages/6_learning.py", "**Learning**: the error fed back, one step at a time; and when it goes wrong", "📉"),
         ("pages/7_abstraction.py", "**Abstraction**: how separable the classes are at each layer", "🪜")]
for page, label, icon in LINKS:  # one per line: a page link's label does not wrap, so columns cut it off
    st.page_link(page, label=label, icon=icon)
st.subheader("Right now")
result = session.peek_current_model()
if result is None:
    st.write("No model yet. Open **Train** (or **Layers**) and the default model trains in a few seconds "
             "on 4,000 handwritten digits that come with the app, no internet needed.")
else:
    m = result.metrics
    st.write(f"Your model: **{m['params']:,} weights**, trained on **{m['train_images']:,}** images of "
             f"**{result.config.dataset}**, gets **{session.percent(m['test_accuracy'])}** of unseen test images right.")


