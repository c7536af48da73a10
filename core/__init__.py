"""core: train, save and load the VAE and GAN (and the evaluation classifier) compared by the dashboard."""

__version__ = "0.1.0"
