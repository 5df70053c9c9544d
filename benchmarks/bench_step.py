"""(a) ms per training step: spatial net with both costs on every layer vs plain nn.Linear.

Usage:
    python benchmarks/bench_step.py [--widths 256,256 1024,1024] [--batch 256] [--repeats 30]
Concatenate input of two 28x28 images (1568 inputs), 2 tasks x 10 labels, Sigmoid, Adam 5e-3.
Baselines, in the same run: the same layers as plain nn.Linear without costs, trained with
(1) torch's default Adam, (2) fused Adam, which ours uses (spatialsearch.train picks fused
kernels for Adam/AdamW/SGD/Adagrad). A timing sample is 10 steps of one network in a row,
the networks taking turns (benchmarks.common.interleaved_ms). Before timing, the fused costs
are checked against the float64 loop reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    device_name,
    interleaved_ms,
    plain_network,
    record,
    table,
)
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.costs import CostWorkspace, penalised_backward, spatial_costs  # noqa: E402
from spatialsearch.evaluation import task_loss  # noqa: E402
from spatialsearch.models import build_model  # noqa: E402
from spatialsearch.train import build_optimizer  # noqa: E402


def check_against_reference() -> None:
    from tests import reference

    config = trial_config_from_dict({"layers": [7, 5], "labels": 5})
    model = build_model(config).double()
    got = spatial_costs(model.spatial_layers, config.cost_layers, "l2")
    want = reference.network_costs(model.spatial_layers, list(config.cost_layers), "l2")
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def measure(widths: list[int], batch: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    config = trial_config_from_dict({"datasets": ["MNIST", "FashionMNIST"], "labels": 10,
                                     "layers": widths, "activation": "Sigmoid",
                                     "proximity": 1, "transport": 10, "device": device.type})
    spatial = build_model(config).to(device)
    spatial_opt = build_optimizer(spatial, config)
    plains = {name: plain_network(1568, widths, 20).to(device) for name in ("default", "fused")}
    plain_opts = {"default": torch.optim.Adam(plains["default"].parameters(), 5e-3),
                  "fused": torch.optim.Adam(plains["fused"].parameters(), 5e-3, fused=True)}
    x = torch.rand(batch, 2, 28, 28, device=device)
    y = torch.randint(0, 10, (batch, 2), device=device)
    layers, where = spatial.spatial_layers, config.cost_layers
    workspace = CostWorkspace()

    def spatial_step() -> None:  # as spatialsearch.train.Trainer.train_epoch does it
        spatial_opt.zero_grad(set_to_none=True)
        penalised_backward(task_loss(spatial(x), y), layers, where, "l2", 1.0, 10.0, workspace)
        spatial_opt.step()

    def plain_step(name: str):
        def step() -> None:
            plain_opts[name].zero_grad(set_to_none=True)
            task_loss(plains[name](x).view(-1, 2, 10), y).backward()
            plain_opts[name].step()
        return step

    def synced(step):
        def run() -> None:
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return run

    timings = interleaved_ms({"spatial": synced(spatial_step),
                              "plain_default": synced(plain_step("default")),
                              "plain_fused": synced(plain_step("fused"))}, repeats=repeats)
    return record("step", widths=widths, batch=batch, dtype="float32",
                  device=device_name(device),
                  **{f"{k}_median_ms": round(v[0], 3) for k, v in timings.items()},
                  **{f"{k}_iqr_ms": round(v[1], 3) for k, v in timings.items()},
                  ratio_vs_fused=round(timings["spatial"][0] / timings["plain_fused"][0], 3),
                  ratio_vs_default=round(timings["spatial"][0] / timings["plain_default"][0], 3))


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", nargs="+", default=["256,256", "1024,1024"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    check_against_reference()
    rows = []
    for spec in args.widths:
        r = measure([int(w) for w in spec.split(",")], args.batch, args.repeats,
                    torch.device(args.device))
        rows.append([f"[{spec}]", f"{r['spatial_median_ms']:.2f} ± {r['spatial_iqr_ms']:.2f}",
                     f"{r['plain_fused_median_ms']:.2f}", f"{r['plain_default_median_ms']:.2f}",
                     f"{r['ratio_vs_fused']:.2f}x", f"{r['ratio_vs_default']:.2f}x"])
    print(table(rows, ["widths", "spatial ms (median ± IQR)", "plain ms (fused Adam)",
                       "plain ms (default Adam)", "ratio vs same optimizer",
                       "ratio vs default plain"]))
    return rows


if __name__ == "__main__":
    main()
