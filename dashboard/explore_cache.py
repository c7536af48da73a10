"""The Explore page's data: a visitor's drawing prepared as the data set's images were, its codes, likelihood,
class and nearest digits; latent directions and traversals. The torch work lives in core.explore; these wrappers
cache it per run version (the weights' and embeddings' stamps) and, for a visitor's drawing, in bounded caches
keyed on the drawing's pixels."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from core import embed, explore
from core.data import load_split
from core.explore import ACTIVE_THRESHOLD, axis_directions  # noqa: F401  (for the Explore page, which imports no core)
from core.run import layout
from core.run.layout import file_stamp
from dashboard.jobs_client import data_root, dataset_available
from dashboard.runs import classifier_path, dataset_record, embeddings, latent_dim, model
from dashboard.sampling import codes_of, latent_codes, render

ELBO_SAMPLES = 4  # draws of z for E_q[-log p(x|z)], for a drawing and for the test digits it is compared with


def _run_stamp(path: str) -> tuple:
    return file_stamp(path, layout.WEIGHTS), file_stamp(path, layout.EMBEDDINGS), file_stamp(path)


def has_encoder(path: str) -> bool:
    """The run's model maps images to codes (VAE: mu(x); GAN: a trained encoder E)."""
    return explore.has_encoder(model(path))


def has_posterior(path: str) -> bool:
    """The run's model has a Gaussian posterior q(z|x), hence per-dimension KL and an ELBO (the VAE)."""
    return explore.has_posterior(model(path))


def image_to_digit(image: np.ndarray, dataset: str = "mnist") -> np.ndarray | None:
    """A canvas (RGBA) or uploaded image -> uint8 (side, side), prepared as the data set's images were (MNIST:
    the ink fitted into 20x20 of 28x28; Fashion-MNIST: into the whole field). None: no ink."""
    record = dataset_record(dataset)
    x = explore.prepare(explore.to_grey(image), side=record.image_size, box=record.ink_box or record.image_size)
    return None if x is None else np.round(x * 255).astype(np.uint8)


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _classify(path: str, stamp: tuple, digits: bytes, side: int = 28) -> np.ndarray:
    x = torch.from_numpy(np.frombuffer(digits, np.uint8).reshape(-1, 1, side, side).astype(np.float32) / 255.0)
    return model(path).predict_proba(x).numpy()


def classify(dataset: str, digits: np.ndarray) -> np.ndarray | None:
    """Class probabilities (n, classes) from the data set's committed classifier, or None without one."""
    path = classifier_path(dataset)
    if path is None:
        return None
    return _classify(path, _run_stamp(path), np.ascontiguousarray(digits, np.uint8).tobytes(), digits.shape[-1])


def embed_images(path: str, images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> the run's latent codes (VAE: mu(x); GAN: E(x))."""
    return embed.latent_codes(model(path), torch.from_numpy(np.ascontiguousarray(images))[:, None])


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _neg_elbo(path: str, stamp: tuple, digits: bytes, side: int = 28) -> dict:
    return explore.neg_elbo(model(path), np.frombuffer(digits, np.uint8).reshape(-1, side, side), samples=ELBO_SAMPLES)


def neg_elbo(path: str, digits: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image -ELBO, reconstruction and KL (nats) of uint8 digits under the run's VAE."""
    return _neg_elbo(path, _run_stamp(path), np.ascontiguousarray(digits, np.uint8).tobytes(), digits.shape[-1])


@st.cache_data(max_entries=16, show_spinner=False)
def _posterior_stats(path: str, stamp: tuple) -> dict | None:
    images = embeddings(path).get("images")
    if images is None:  # an embeddings.npz from before the digits were stored in it
        return None
    mu, logvar = explore.posterior(model(path), images)
    return {"kl": explore.per_dim_kl(mu, logvar), "activity": explore.activity(mu), "n": len(images),
            "test_neg_elbo": explore.neg_elbo(model(path), images, samples=ELBO_SAMPLES)["neg_elbo"]}


def posterior_stats(path: str) -> dict | None:
    """On the run's test subset (embeddings.npz images): per-dimension KL (nats), Cov_x(E_q[z_j]) per
    dimension, and each digit's -ELBO, for the VAE (None when embeddings.npz holds no digits)."""
    return _posterior_stats(path, _run_stamp(path))


def activity(path: str) -> np.ndarray:
    """Cov_x(E_q[z_j]) per latent dimension over the run's test subset: the variance of its stored codes
    (a VAE's codes are the posterior means mu(x)); needs no digits in embeddings.npz."""
    return explore.activity(embeddings(path)["codes"])


@st.cache_data(max_entries=16, show_spinner=False)
def _principal(path: str, stamp: tuple) -> dict:
    return explore.principal_directions(embeddings(path)["codes"])


def principal(path: str) -> dict[str, np.ndarray]:
    """PCA of the run's test-subset codes: mean, directions, std along each, explained variance."""
    return _principal(path, _run_stamp(path))


def traversal(path: str, directions: np.ndarray, scales: np.ndarray, seed: int, steps: int) -> np.ndarray:
    """Images (rows * steps, 28, 28): the code of `seed` (as on the Samples page) moved from -3 to +3 scales
    along each direction (unit vectors (rows, D)), the rest of the code unchanged."""
    z0 = codes_of(path, latent_codes(seed, 1, latent_dim(path)))[0]
    directions = np.asarray(directions, np.float32)
    return render(path, explore.traversal_codes(z0, directions, directions @ z0, scales, steps))


def nearest_test(path: str, digit: np.ndarray, k: int = 8):
    """The k digits of the run's test subset nearest to `digit` in pixels: (images, test-set indices, distances),
    or None when embeddings.npz holds no digits."""
    emb = embeddings(path)
    if "images" not in emb:
        return None
    idx, dist = explore.nearest(digit, emb["images"], k)
    return emb["images"][idx], emb["indices"][idx], dist


def map_position(path: str, code: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Where a new code lands on the run's 2-D map: PCA exactly (the same projection as the map); the
    precomputed t-SNE at the mean position of its 5 nearest test codes (returned too), t-SNE placing no
    new points."""
    if method == "pca":
        return explore.project(code[None], principal(path))[0], None
    emb = embeddings(path)
    return explore.place_by_neighbours(code, emb["codes"], emb["tsne"], k=5)


@st.cache_resource(max_entries=2, show_spinner="Loading the training digits…")
def _train_images(dataset: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    images = load_split(dataset, root, train=True)[0][:, 0].numpy()  # uint8 (60000, 28, 28), 47 MB
    return images, explore.squared_norms(images)


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _nearest_train(dataset: str, root: str, digit: bytes, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train, sq = _train_images(dataset, root)
    idx, dist = explore.nearest(np.frombuffer(digit, np.uint8).reshape(train.shape[1:]), train, k, ref_sq=sq)
    return train[idx], idx, dist


def nearest_train(dataset: str, digit: np.ndarray, k: int = 8):
    """The k training digits nearest to `digit` in pixels: (images, training-set indices, distances), or None
    when the data set is not on this server."""
    if not dataset_available(dataset):
        return None
    return _nearest_train(dataset, str(data_root()), np.ascontiguousarray(digit, np.uint8).tobytes(), k)
