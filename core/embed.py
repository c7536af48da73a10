"""Latent codes of a fixed test subset, and their 2-D maps (t-SNE, PCA)."""

from __future__ import annotations

import numpy as np
import torch

from core.data import to_float

SUBSET_SIZE = 2000
SUBSET_SEED = 0


def test_subset(n_test: int, size: int = SUBSET_SIZE, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of a fixed random subset of the test set: the same digits for every run."""
    g = torch.Generator().manual_seed(seed)
    return np.sort(torch.randperm(n_test, generator=g)[: min(size, n_test)].numpy())


@torch.no_grad()
def latent_codes(model, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """uint8 images (N, 1, 28, 28) -> model.embed codes (N, latent_dim) as float32 numpy."""
    model.eval()
    device = next(model.parameters()).device
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


def compute_embeddings(model, test_images: torch.Tensor, test_labels: torch.Tensor,
                       size: int = SUBSET_SIZE, perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """The embeddings.npz content: subset indices, labels, images, latent codes and t-SNE coordinates."""
    idx = test_subset(len(test_images), size)
    images = test_images[torch.from_numpy(idx).to(test_images.device)]
    codes = latent_codes(model, images)
    return {"indices": idx.astype(np.int64), "labels": test_labels.cpu().numpy()[idx].astype(np.int64),
            "codes": codes, "tsne": tsne(codes, perplexity),
            # the digits themselves (uint8, 1.5 MB raw, ~0.3 MB compressed): the dashboard shows them
            # and reconstructs them without needing the data set on the server
            "images": images[:, 0].cpu().numpy()}
