"""A fresh 8x8 grid of a run's samples, for counting clean digits by eye.

    python -m bench.sample_grid checkpoints/mnist-gan --seed 2026 --out grid.png

z ~ N(0, I) from --seed (not the fixed per-epoch grid codes, so the grid is one the run never chose its
epoch on), drawn by the sampling generator, scaled 4x. docs/gan.md says how the digits were counted.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from core.images import make_grid
from core.run.folder import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a vae or gan run folder")
    p.add_argument("--seed", type=int, default=2026, help="seed of the 64 latent codes (default: 2026)")
    p.add_argument("--out", default="grid.png", help="PNG to write (default: grid.png)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="scale of z (a mixture GAN: of each mode), as on the Samples page (default: 1)")
    args = p.parse_args()
    model = load_model(args.run).eval()
    z = torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        x = model.render(model.code(z, args.temperature)).clamp(0, 1).cpu().numpy()
    Image.fromarray(np.asarray(make_grid(x, nrow=8, scale=4)).squeeze()).save(args.out)
    print(f"wrote {args.out}: 64 samples of {args.run}, seed {args.seed}, temperature {args.temperature:g}")


if __name__ == "__main__":
    main()
