"""LayerLens core: data, networks, training, checkpoints and inspection. Never imports streamlit."""
import os

# OpenMP threads that wait for work sleep instead of spinning. One server runs many visitors' threads (each with its
# own OpenMP team) beside a training, often on 2 cores shared with a browser: with spinning threads the default
# model trained 10× slower under load (40.6 s against 4.0 s, `python -m layerlens train --epochs 2` beside other
# work). Read once, when torch or scikit-learn first loads OpenMP, so entry points import layerlens first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
