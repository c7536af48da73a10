"""Latent codes of a fixed test subset, and their 2-D maps (t-SNE, PCA)."""

from __future__ import annotations

import numpy as np

# torch is imported inside the functions that need it: `python -m core.embed tsne` (the dashboard's
# recompute) starts in a second instead of several.

SUBSET_SIZE = 2000
SUBSET_SEED = 0
# How the run's 2-D map is made; written to config.json as "latent_map" (embeddings.npz holds numbers only).
# scikit-learn's Barnes-Hut t-SNE with PCA initialisation: on one core of the 2-core test machine 1,000 digits
# take about 4 s and 2,000 about 9-10 s (bench/retrain_speed.py --tsne-only), so retrain jobs map 1,000.
TSNE_METHOD = "t-SNE (scikit-learn, Barnes-Hut, PCA initialisation)"


def test_subset(n_test: int, size: int = SUBSET_SIZE, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of a fixed random subset of the test set: the same digits for every run."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return np.sort(torch.randperm(n_test, generator=g)[: min(size, n_test)].numpy())


def latent_codes(model, images, batch_size: int = 1000) -> np.ndarray:
    """uint8 images (N, 1, 28, 28) -> model.embed codes (N, latent_dim) as float32 numpy."""
    import torch

    from core.data import to_float

    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        out = [model.embed(to_float(images[i:i + batch_size].to(device))).cpu()
               for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy().astype(np.float32)


def tsne(codes: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """t-SNE (scikit-learn, PCA initialisation) to 2-D; perplexity is clipped below the sample count."""
    from sklearn.manifold import TSNE

    perplexity = float(min(perplexity, max(1.0, (len(codes) - 1) / 3)))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)
    return coords.astype(np.float32)


def pca(codes: np.ndarray) -> np.ndarray:
    """First two principal components (instant; linear, so it keeps global structure t-SNE discards)."""
    centred = codes - codes.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def compute_embeddings(model, test_images, test_labels,
                       size: int = SUBSET_SIZE, perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """The embeddings.npz content: subset indices, labels, images, latent codes and t-SNE coordinates."""
    import torch

    idx = test_subset(len(test_images), size)
    images = test_images[torch.from_numpy(idx).to(test_images.device)]
    codes = latent_codes(model, images)
    return {"indices": idx.astype(np.int64), "labels": test_labels.cpu().numpy()[idx].astype(np.int64),
            "codes": codes, "tsne": tsne(codes, perplexity),
            # the digits themselves (uint8, 1.5 MB raw, ~0.3 MB compressed): the dashboard shows them
            # and reconstructs them without needing the data set on the server
            "images": images[:, 0].cpu().numpy()}


# --- `python -m core.embed tsne RUN OUT`: the dashboard's t-SNE recompute, outside the web server -------------
MAX_RECOMPUTE = 2000  # digits: the cap on a visitor's recompute (seconds of one core per thousand digits)


def recompute_main(argv=None) -> int:
    """t-SNE of the first `--digits` latent codes of RUN's embeddings.npz with `--perplexity`, written to OUT
    (.npy, atomically). One at a time per OUT's folder (a file lock), at lower CPU priority than the server."""
    import argparse
    import fcntl
    import os
    import tempfile
    from pathlib import Path

    from core.run import schemas  # torch-free: checks and reads the npz without pickles

    p = argparse.ArgumentParser(prog="python -m core.embed tsne")
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--digits", type=int, default=1000)
    args = p.parse_args(argv)
    if not 1 <= args.perplexity <= 100 or not 10 <= args.digits <= MAX_RECOMPUTE:
        p.error(f"perplexity must be 1-100 and digits 10-{MAX_RECOMPUTE}")
    try:
        os.nice(10)
    except OSError:
        pass
    out = Path(args.out)
    with open(out.parent / "tsne.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # queue behind another recompute: one core at most
        codes = schemas.read_embeddings(args.run)["codes"][: args.digits]
        coords = tsne(codes, args.perplexity)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".npy", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            np.save(f, coords, allow_pickle=False)
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 2 or sys.argv[1] != "tsne":
        print("usage: python -m core.embed tsne RUN OUT [--perplexity P] [--digits N]", file=sys.stderr)
        sys.exit(2)
    sys.exit(recompute_main(sys.argv[2:]))
