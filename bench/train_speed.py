"""Training throughput: torchvision DataLoader + ToTensor vs core's in-memory pipeline, and epoch times.

    python bench/train_speed.py --data-dir ../shared/data [--device auto] [--skip-conv] [--threads 1]
    python bench/train_speed.py --data-dir ../shared/data --precision-only --threads 1

(a) and (b) train the same classic pytorch/examples VAE (784-400-20, batch 128, Adam 1e-3, the examples'
BCE loss) for one epoch of MNIST; only the data pipeline differs. Both are measured in this run, on this
machine, so the ratio is meaningful; absolute numbers depend on the CPU and its load.

(c) times one default GAN step (batch 128) in fp32 and under bfloat16 autocast (TrainConfig.precision),
alternating step by step in one process, so both see the same load; it prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from core.data import batches, default_root, load_split
from core.models import build_model
from core.train import TrainConfig, autocast, cpu_has_bf16, fit, resolve_device


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


def precision_ratio(images: torch.Tensor, device, steps: int = 40, warmup: int = 5) -> dict[str, float]:
    """Median ms of one default GAN step, fp32 vs bf16 autocast, alternating (two models, same seed)."""
    from core.data import to_float

    models = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        models[precision] = build_model("gan").to(device).train()
        models[precision].configure_optimizers(2e-4, (0.5, 0.999))
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    gen = torch.Generator().manual_seed(0)
    for i in range(warmup + steps):
        x = to_float(images[torch.randint(0, len(images), (128,), generator=gen)])
        for precision, model in models.items():
            t = time.perf_counter()
            with autocast(precision, device):
                model.step(x)
            if i >= warmup:
                times[precision].append(time.perf_counter() - t)
    med = {k: 1000 * sorted(v)[len(v) // 2] for k, v in times.items()}
    return {"fp32_ms": med["fp32"], "bf16_ms": med["bf16"], "ratio": med["fp32"] / med["bf16"]}


def print_precision_ratio(images, device) -> None:
    r = precision_ratio(images, device)
    native = "native bf16" if cpu_has_bf16() else "no native bf16 (emulated: expect a slow-down)"
    print(f"(c) default GAN step, batch 128, {torch.get_num_threads()} thread(s), {native}: "
          f"fp32 {r['fp32_ms']:.0f} ms, bf16 autocast {r['bf16_ms']:.0f} ms: {r['ratio']:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_root()))
    p.add_argument("--device", default="auto")
    p.add_argument("--skip-conv", action="store_true", help="skip the conv VAE / GAN epoch times")
    p.add_argument("--precision-only", action="store_true", help="only (c): the fp32 vs bf16 GAN step")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if args.precision_only:
        print_precision_ratio(load_split("mnist", args.data_dir, train=True, device=device)[0], device)
        return

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
    print_precision_ratio(images, device)

    if args.skip_conv:
        return
    test = load_split("mnist", args.data_dir, train=False, device=device)
    for kind in ("vae", "gan"):
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            model = build_model(kind).to(device)
            result = fit(model, (images, labels), test, TrainConfig(epochs=1, device=str(device), precision=precision))
            print(f"default conv {kind.upper()}, {precision}: one epoch (60,000 images + test pass) in "
                  f"{result['wall_time_s']:.1f} s on {device}")


if __name__ == "__main__":
    main()
