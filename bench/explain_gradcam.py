"""What a GradCAM map costs against one forward and backward pass of the same model on the same input.

GradCAM here is dlx's whole method: the last conv layer found, captum's hooks on, one forward pass, the
gradient of the class logit with respect to the layer, the weighted sum and ReLU. Also shown: the same plus the
map rescaled to the input and smoothed, as the panels draw it. The baseline is what one training step of that single image costs without the optimizer:
forward, then backward into every parameter. Two models: dlx's digits CNN (8x8, where fixed overheads show) and
torchvision's ResNet-18 at 224x224 (random weights; the course's demo size). Runs alternate; medians are compared.
Prints the ratio GradCAM / (forward + backward) for each (target <= 1.5).

    python bench/explain_gradcam.py [--repeats 30] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torchvision.models import resnet18

import cpu_threads  # bench/cpu_threads.py, beside this script
from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.explain.base import default_sigma, to_input_size
from dlx.explain.gradcam import gradcam
from dlx.registry import models


def forward_backward(model: nn.Module, x: torch.Tensor, target: int) -> None:
    model.zero_grad(set_to_none=True)
    model(x)[0, target].backward()


def gradcam_map(model: nn.Module, x: torch.Tensor, target: int) -> None:
    gradcam(model, x, target)


def gradcam_rescaled(model: nn.Module, x: torch.Tensor, target: int) -> None:
    size = tuple(x.shape[-2:])
    to_input_size(gradcam(model, x, target).raw, size, default_sigma(size))


def compare(name: str, model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median times of each; returns the ratio of the GradCAM map to forward+backward."""
    model.eval()
    target = int(model(x).argmax())
    runs = {"forward+backward": forward_backward, "gradcam": gradcam_map, "gradcam+rescale": gradcam_rescaled}
    for fn in runs.values():  # warm-up
        fn(model, x, target)
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            started = time.perf_counter()
            fn(model, x, target)
            times[key].append(time.perf_counter() - started)
    base, cam, shown = (statistics.median(times[key]) for key in runs)
    print(f"{name:<22} forward+backward {base * 1e3:8.2f} ms | gradcam {cam * 1e3:8.2f} ms, ratio {cam / base:.2f} | "
          f"with the map rescaled and smoothed {shown * 1e3:8.2f} ms, ratio {shown / base:.2f}")
    return cam / base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    cpu_threads.add_option(parser)
    args = parser.parse_args()
    cpu_threads.apply(args)
    torch.manual_seed(0)
    digits = DataSpec((1, 8, 8), CLASSIFICATION, num_classes=10)
    ratios = {
        "dlx cnn, digits 8x8": compare("dlx cnn, digits 8x8", models.get("cnn").build(digits), torch.rand(1, 1, 8, 8),
                                       args.repeats),
        "resnet18, 224x224": compare("resnet18, 224x224", resnet18(weights=None), torch.rand(1, 3, 224, 224),
                                     max(3, args.repeats // 5)),
    }
    print("GradCAM costs " + ", ".join(f"{r:.2f}x ({n})" for n, r in ratios.items())
          + " one forward+backward pass (target <= 1.5x)")


if __name__ == "__main__":
    main()
