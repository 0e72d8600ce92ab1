"""LayerLens core: data, networks, training, checkpoints and inspection. Never imports streamlit."""
