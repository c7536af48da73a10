"""Training throughput: torchvision DataLoader + ToTensor vs core's in-memory pipeline, and epoch times.

    python bench/train_speed.py --data-dir ../shared/data [--device auto] [--skip-conv]

(a) and (b) train the same classic pytorch/examples VAE (784-400-20, batch 128, Adam 1e-3, the examples'
BCE loss) for one epoch of MNIST; only the data pipeline differs. Both are measured in this run, on this
machine, so the ratio is meaningful; absolute numbers depend on the CPU and its load.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from core.data import batches, default_root, load_split
from core.models import build_model
from core.train import TrainConfig, fit, resolve_device


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py: 784-400-(20, 20), decoder 20-400-784."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = torch.sigmoid(self.fc4(F.relu(self.fc3(z))))
        bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
        return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def one_epoch(batch_iter, device) -> tuple[float, int]:
    torch.manual_seed(0)
    model = ExamplesVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, start = 0, time.perf_counter()
    for x, _ in batch_iter:
        x = x.to(device, non_blocking=True)
        loss = model(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_root()))
    p.add_argument("--device", default="auto")
    p.add_argument("--skip-conv", action="store_true", help="skip the conv VAE / GAN epoch times")
    args = p.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    from torchvision import datasets, transforms

    ds = datasets.MNIST(args.data_dir, train=True, download=False, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True)
    t_a, n_a = one_epoch(loader, device)
    print(f"(a) DataLoader + ToTensor : {n_a / t_a:10,.0f} images/s  ({t_a:.1f} s/epoch)")

    load_start = time.perf_counter()
    images, labels = load_split("mnist", args.data_dir, train=True, device=device)
    t_load = time.perf_counter() - load_start
    t_b, n_b = one_epoch(batches(images, labels, 128, generator=torch.Generator().manual_seed(0)), device)
    print(f"(b) core in-memory        : {n_b / t_b:10,.0f} images/s  "
          f"({t_b:.1f} s/epoch, + {t_load:.1f} s one-off load)")
    print(f"speed-up (b)/(a)          : {(n_b / t_b) / (n_a / t_a):.1f}x   (target >= 5x)")

    # The same two pipelines with no model: what the data path itself costs per epoch.
    t = time.perf_counter()
    n_pa = sum(x.shape[0] for x, _ in loader)
    t_pa = time.perf_counter() - t
    t = time.perf_counter()
    n_pb = sum(x.shape[0] for x, _ in batches(images, labels, 128, generator=torch.Generator().manual_seed(0)))
    t_pb = time.perf_counter() - t
    print(f"data only: (a) {n_pa / t_pa:,.0f} images/s ({t_pa:.2f} s/epoch), (b) {n_pb / t_pb:,.0f} images/s "
          f"({t_pb:.3f} s/epoch): {(n_pb / t_pb) / (n_pa / t_pa):.0f}x")
    print(f"model only (b minus its data): {t_b - t_pb:.2f} s/epoch, so no pipeline can beat "
          f"{t_a / max(t_b - t_pb, 1e-9):.1f}x end to end here")

    if args.skip_conv:
        return
    test = load_split("mnist", args.data_dir, train=False, device=device)
    for kind in ("vae", "gan"):
        torch.manual_seed(0)
        model = build_model(kind).to(device)
        result = fit(model, (images, labels), test, TrainConfig(epochs=1, device=str(device)))
        print(f"default conv {kind.upper()}: one epoch (60,000 images + test pass) in "
              f"{result['wall_time_s']:.1f} s on {device}")


if __name__ == "__main__":
    main()
