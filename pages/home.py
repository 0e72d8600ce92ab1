"""Home page: what a neural network is, in one screen, and where to go next."""
import streamlit as st

import chrome
import page_list
import session
from layerlens.data import shown_name
from layerlens.formatting import percent

chrome.inside_navigation()

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
for page in page_list.PAGES[1:]:  # one per line: a page link's label does not wrap, so columns cut it off
    page_list.page_link(page, f"**{page.title}**: {page.pitch}")
st.subheader("Right now")
result = session.peek_current_model()
if result is None:
    st.write("No model yet. Open **Train** (or **Layers**) and the default model is there: it learned from 4,000 "
             "handwritten digits that come with the app, no internet needed.")
else:
    m = result.metrics
    st.write(f"Your model: **{m['params']:,} weights**, trained on **{m['train_images']:,}** images of "
             f"**{shown_name(result.config.dataset)}**, gets **{percent(m['test_accuracy'])}** of unseen test images right.")
