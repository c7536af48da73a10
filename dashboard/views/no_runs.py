"""Shown instead of the comparison pages when no run of a compared family exists."""

import streamlit as st

from core import paths
from dashboard import components as ui
from dashboard import runs

st.title("No runs found")
# folder names as the server's settings spell them, cut to their last parts: no machine paths on screen
families = " or ".join(runs.LABELS[k] for k in runs.KINDS)
st.warning(ui.short_paths(f"There are no {families} runs under `{paths.checkpoints_dir()}` or `{paths.runs_dir()}`."))
st.markdown("""
Train the default pair (MNIST must be under `--data-dir`, or pass `--download` with internet access):

```bash
python -m core train --model classifier --epochs 4 --data-dir data --out checkpoints/mnist-classifier
python -m core train --model vae --epochs 50 --lr-schedule cosine --data-dir data --out checkpoints/mnist-vae
python -m core train --model gan --epochs 200 --time-budget 3000 --keep-best --data-dir data --out checkpoints/mnist-gan
```

or pull published runs from the Hugging Face Hub:

```bash
python -m core pull USER/mnist-vae --root checkpoints
```

Set `CHECKPOINT_DIR` to read runs from another folder. The *Concepts* page works without any run.
""")
