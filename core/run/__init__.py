"""The run folder, one concern per module:

- layout: what a run folder holds, how runs are named and found; CheckpointError
- reading: reading its files safely (size limits first, regular files only, no links followed)
- formats: the binary files checked from their headers (safetensors, npz, PNG)
- schemas: what config.json, history.json and metrics.json must say; weights and embeddings against the config
- config: config.json as one typed record, and its format versions
- folder: the folder as a whole: checked once, loaded, saved

Import from the module that holds a name (`from core.run.folder import load_run`): layout, reading, formats,
schemas and config import no torch at import time, so `python -m core.embed tsne` reads a run without it.
"""
