"""Each explainer on tiny models whose maps can be worked out by hand (COURSE.md, "Explaining a classifier")."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlx.errors import DlxError
from dlx.explain import layers
from dlx.explain.base import to_input_size
from dlx.explain.lime import kernel
from dlx.registry import explainers

pytestmark = pytest.mark.usefixtures("one_thread")


def explain(method: str, model: nn.Module, x: torch.Tensor, target: int, **settings):
    return explainers.get(method).build(model.eval(), x, target, **explainers.get(method).resolve(settings, method))


def linear_image_model(weights: torch.Tensor) -> nn.Module:
    """logits = W flatten(x) + b for (1, C, H, W) inputs: every map of it is known in closed form."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(weights.shape[1], weights.shape[0]))
    with torch.no_grad():
        model[1].weight.copy_(weights)
        model[1].bias.copy_(torch.tensor([0.3, -0.7]))
    return model


W = torch.tensor([[1.0, -2.0, 3.0, -4.0, 0.5, 0.25, -6.0, 1.0],   # class 0, channels (2, 2, 2) flattened
                  [-1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])     # class 1
X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.5], [2.0, -3.0]]]])  # (1, 2, 2, 2)


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


def test_saliency_is_the_largest_absolute_logit_gradient_over_channels():
    result = explain("saliency", linear_image_model(W), X, 0)
    # d xi_0 / d x = W[0]; channel 0: |1, -2, 3, -4|, channel 1: |0.5, 0.25, -6, 1| -> max per pixel
    assert torch.equal(result.raw, torch.tensor([[1.0, 2.0], [6.0, 4.0]]))
    assert result.kind == "map"


def test_saliency_uses_the_logit_not_the_softmax():
    # with two classes the softmax gradient would be p0 p1 (W0 - W1), which differs from W1 in every entry
    result = explain("saliency", linear_image_model(W), X, 1)
    assert torch.equal(result.raw, torch.tensor([[1.0, 1.0], [1.0, 1.0]]))


def test_saliency_on_a_table_is_per_feature():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.5, 2.0], [1.0, 1.0, 1.0]]))
    result = explain("saliency", model, torch.tensor([[1.0, 2.0, 3.0]]), 0)
    assert result.kind == "features" and torch.equal(result.raw, torch.tensor([0.5, 1.5, 2.0]))


def test_smoothgrad_is_seeded_and_without_noise_equals_saliency():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Tanh(), nn.Flatten(), nn.Linear(12, 2))
    first = explain("smoothgrad", model, X, 0, samples=8, seed=3)
    again = explain("smoothgrad", model, X, 0, samples=8, seed=3)
    other = explain("smoothgrad", model, X, 0, samples=8, seed=4)
    assert torch.equal(first.raw, again.raw) and not torch.equal(first.raw, other.raw)
    silent = explain("smoothgrad", model, X, 0, samples=4, noise=0.0)
    assert torch.allclose(silent.raw, explain("saliency", model, X, 0).raw, atol=1e-6)


class TwoMaps(nn.Module):
    """A 1x1 conv gives F^1 = x and F^2 = -x; the logits are a linear read-out of both maps."""

    def __init__(self, readout: torch.Tensor, inplace_relu: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.act = nn.ReLU(inplace=True) if inplace_relu else nn.Identity()
        self.head = nn.Linear(8, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
            self.head.weight.copy_(readout)

    def forward(self, x):
        return self.head(self.act(self.conv(x)).flatten(1))  # (B, 1, 2, 2) -> (B, 2, 2, 2) -> (B, 2)


# class 0 reads F^1 with weight 1 everywhere (alpha^1 = 1) and F^2 at one position with 2 (alpha^2 = 0.5)
READOUT = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0], [0.0] * 8])


@pytest.mark.parametrize("image, expected", [
    ([[1.0, 2.0], [3.0, 4.0]], [[0.5, 1.0], [1.5, 2.0]]),      # M = ReLU(1 * x + 0.5 * (-x)) = 0.5 x
    ([[1.0, -2.0], [3.0, -4.0]], [[0.5, 0.0], [1.5, 0.0]]),    # the ReLU removes the negative positions
])
def test_gradcam_weighs_feature_maps_by_their_mean_gradient(image, expected, device):
    model = TwoMaps(READOUT).to(device)
    result = explain("gradcam", model, torch.tensor(image, device=device)[None, None], 0)
    assert torch.allclose(result.raw, torch.tensor(expected, device=device))
    assert result.params["layer"] == "conv" and no_hooks_left(model)


def test_gradcam_works_through_an_inplace_relu():
    model = TwoMaps(READOUT, inplace_relu=True)
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    # F^2 = -x < 0 everywhere, so the ReLU stops its gradient: alpha^2 = 0, alpha^1 = 1, M = ReLU(x)
    assert torch.allclose(explain("gradcam", model, x, 0).raw, x[0, 0])
    assert torch.allclose(explain("gradcam", model, x, 0, layer="act").raw, x[0, 0])
    assert no_hooks_left(model)


def test_gradcam_defaults_to_the_last_conv_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    result = explain("gradcam", model, torch.rand(1, 1, 6, 6), 1)
    assert result.params["layer"] == "2" and result.raw.shape == (6, 6)


@pytest.mark.parametrize("model, layer, message", [
    (TwoMaps(READOUT), "head", "not a feature map"),
    (TwoMaps(READOUT), "convv", "candidates: conv, act"),
    (TwoMaps(torch.zeros(2, 8)), None, "gradient with respect to this layer is zero"),
    (nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), None, "has none"),
])
def test_gradcam_refuses_layers_it_cannot_use_and_leaves_no_hooks(model, layer, message):
    with pytest.raises(DlxError, match=message):
        explain("gradcam", model, torch.rand(1, 1, 2, 2), 0, layer=layer)
    assert no_hooks_left(model)


class Attending(nn.Module):
    """A sequence classifier that implements the attention hook: it attends over its steps with weights it was
    given, and a linear map of the attended input gives the logits."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights, self.head = weights, nn.Linear(2, 2)

    def attention_maps(self, x):
        return {"pooling": self.weights.expand(len(x), 1, -1), "steps": torch.eye(x.shape[1]).expand(len(x), -1, -1)}

    def forward(self, x):
        return self.head(self.attention_maps(x)["pooling"][:, 0, :, None].mul(x).sum(dim=1))


SEQUENCE = torch.tensor([[[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]]])  # (1, T=3, F=2)


@pytest.mark.parametrize("method, model, x, message", [
    *[(m, nn.Linear(3, 2), torch.rand(1, 3), "needs image") for m in ("smoothgrad", "gradcam", "classviz", "filters")],
    *[(m, Attending(torch.ones(3) / 3), SEQUENCE, "needs image") for m in ("gradcam", "classviz", "filters")],
    ("lime", Attending(torch.ones(3) / 3), SEQUENCE, "needs image or table inputs, but this model takes sequences"),
    ("attention", nn.Linear(3, 2), torch.rand(1, 3), "needs a model with attention"),
    ("gradcam", nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.rand(1, 1, 2, 2), "needs a model with a 2-d conv"),
])
def test_a_method_refuses_inputs_and_models_it_cannot_explain_and_names_those_that_can(method, model, x, message):
    with pytest.raises(DlxError, match=message) as refused:
        explain(method, model, x, 0)
    assert refused.value.args[0].count("; use ") == 1 and method not in refused.value.args[0].split("; use ")[1]


def linear_sequence_model(weights: torch.Tensor) -> nn.Module:
    """logits = W flatten(x) + b for (1, T, F) sequences."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(weights.shape[1], weights.shape[0]))
    with torch.no_grad():
        model[1].weight.copy_(weights)
        model[1].bias.zero_()
    return model


SEQUENCE_W = torch.tensor([[1.0, -2.0, 3.0, -4.0, 0.5, 0.25], [0.0] * 6])


def test_saliency_of_a_sequence_is_the_absolute_gradient_per_step_and_feature():
    result = explain("saliency", linear_sequence_model(SEQUENCE_W), SEQUENCE, 0)
    assert result.kind == "sequence" and torch.equal(result.raw, SEQUENCE_W[0].abs().reshape(3, 2))


def test_smoothgrad_of_a_sequence_without_noise_is_its_saliency():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2))
    silent = explain("smoothgrad", model, SEQUENCE, 1, samples=3, noise=0.0)
    assert silent.kind == "sequence" and torch.allclose(silent.raw, explain("saliency", model, SEQUENCE, 1).raw)


@pytest.mark.parametrize("patch, stride", [(None, None), (2, 1)])  # default: each step and feature alone
def test_occlusion_of_a_sequence_maps_the_drop_of_covering_steps_x_features(patch, stride):
    drop = SEQUENCE_W[0].reshape(3, 2) * SEQUENCE[0]  # covering one cell with 0 removes W x there
    result = explain("occlusion", linear_sequence_model(SEQUENCE_W), SEQUENCE, 0, patch=patch, stride=stride)
    assert result.kind == "sequence" and result.params["patch"] == (patch or 1)
    if patch is None:
        assert torch.allclose(result.raw, drop)
    else:  # windows of 2 steps x 2 features at steps 0 and 1: each cell gets the mean drop of the windows covering it
        windows = [drop[0:2].sum(), drop[1:3].sum()]
        assert torch.allclose(result.raw, torch.stack([windows[0].expand(2), ((windows[0] + windows[1]) / 2).expand(2),
                                                        windows[1].expand(2)]))


def test_attention_gives_the_model_s_own_maps_whatever_the_class():
    pooling = torch.tensor([0.2, 0.5, 0.3])
    model = Attending(pooling)
    first, other = (explain("attention", model, SEQUENCE, t) for t in (0, 1))
    assert first.kind == "attention" and first.params["maps"] == ["pooling", "steps"]
    assert torch.equal(first.raw, pooling[None]) and torch.equal(first.extras["steps"], torch.eye(3))
    assert torch.equal(first.raw, other.raw) and first.params["shapes"] == [[1, 3], [3, 3]]


def test_attention_maps_of_the_wrong_shape_are_one_line():
    model = Attending(torch.ones(3) / 3)
    model.attention_maps = lambda x: {"flat": torch.ones(3)}
    with pytest.raises(DlxError, match=r"attention_maps gave \{'flat': \(3,\)\}: it must give named weights"):
        explain("attention", model, SEQUENCE, 0)


def test_recording_outputs_removes_its_hooks_even_when_the_forward_pass_fails():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(5, 1))
    with pytest.raises(RuntimeError):
        layers.trace(model, torch.rand(1, 3))
    assert no_hooks_left(model)


def test_occlusion_maps_the_logit_drop_of_each_covered_pixel():
    result = explain("occlusion", linear_image_model(W), X, 0, patch=1, stride=1, fill=0.0)
    # covering pixel p in both channels removes sum_c W[0, c, p] x[c, p] from the logit
    drop = (W[0].reshape(2, 2, 2) * X[0]).sum(dim=0)
    assert torch.allclose(result.raw, drop)


def test_occlusion_of_a_table_covers_one_feature_at_a_time():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.5, 2.0], [1.0, 1.0, 1.0]]))
    x = torch.tensor([[1.0, 2.0, 3.0]])
    result = explain("occlusion", model, x, 0, fill=1.0)
    assert torch.allclose(result.raw, torch.tensor([0.5, -1.5, 2.0]) * (x[0] - 1.0))


def test_lime_sample_weights_follow_the_course_kernel():
    result = explain("lime", linear_image_model(W), X, 0, samples=300, kernel_width=0.3, segments=4, compactness=0.1)
    samples, weights = result.extras["samples"].numpy(), result.extras["sample_weights"].numpy()
    l = samples.shape[1]
    assert l == result.params["superpixels"] and samples[0].all()
    s = (samples == 0).sum(axis=1)
    assert np.allclose(weights, np.exp(-(1 - np.sqrt(1 - s / l)) ** 2 / (2 * 0.3**2)))
    assert kernel(torch.tensor([0]), 10, 0.25).item() == 1.0
    assert kernel(torch.tensor([10]), 10, 0.25).item() == pytest.approx(math.exp(-8))  # every superpixel removed


def test_lime_recovers_the_contributions_of_a_linear_model(device):
    """For a linear model and mean-colour fill, removing superpixel j lowers the logit by
    c_j = sum over its pixels of W (x - its mean colour): the surrogate's weights must be those c_j."""
    torch.manual_seed(0)
    weights = torch.randn(2, 3 * 6 * 6).to(device)
    x = torch.rand(1, 3, 6, 6).to(device)
    result = explain("lime", linear_image_model(weights).to(device), x, 0, samples=400, alpha=1e-6, segments=6)
    segments = result.extras["segments"]
    mean_colour = torch.stack([x[0][:, segments == j].mean(dim=1) for j in range(int(segments.max()) + 1)], 1)
    removed = mean_colour[:, segments]  # (3, 6, 6)
    per_pixel = (weights[0].reshape(3, 6, 6) * (x[0] - removed)).sum(dim=0)
    expected = torch.stack([per_pixel[segments == j].sum() for j in range(int(segments.max()) + 1)])
    assert torch.allclose(result.extras["weights"], expected, atol=1e-3)
    ranked = [entry["superpixel"] for entry in result.ranking]
    assert ranked == sorted(ranked, key=lambda j: -abs(float(expected[j])))
    assert torch.allclose(result.raw, result.extras["weights"][segments])


def test_lime_on_a_table_weighs_each_feature():
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.0, 3.0], [0.0] * 4]))
    x = torch.tensor([[1.0, 2.0, 5.0, -1.0]])
    result = explain("lime", model, x, 0, samples=200, alpha=1e-6)  # removed features become 0
    assert torch.allclose(result.raw, torch.tensor([2.0, -2.0, 0.0, -3.0]), atol=1e-3)
    assert result.kind == "features" and [e["feature"] for e in result.ranking][:3] == [3, 0, 1]


@pytest.mark.parametrize("settings", [{}, {"surrogate": "top_k", "top_k": 3}, {"segmentation": "quickshift"}])
def test_lime_is_reproducible_exactly_for_a_seed(settings, device):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 3)).to(device)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1)).to(device)
    first, again = (explain("lime", model, x, 2, samples=200, seed=7, **settings) for _ in range(2))
    assert first.ranking == again.ranking and first.params == again.params
    assert all(torch.equal(first.extras[k], again.extras[k]) for k in first.extras)
    other = explain("lime", model, x, 2, samples=200, seed=8, **settings)
    assert not torch.equal(first.extras["samples"], other.extras["samples"])
    if settings.get("surrogate") == "top_k":
        assert len(first.ranking) <= 3 and (first.extras["weights"] != 0).sum() <= 3


def test_lime_fills_removed_superpixels_with_a_given_colour():
    model = linear_image_model(W)
    result = explain("lime", model, X, 0, samples=300, fill=[1.0, -2.0], alpha=1e-6, segments=1)
    # one superpixel: removing it replaces the whole image by the colour (1, -2)
    coloured = torch.tensor([1.0, -2.0]).reshape(1, 2, 1, 1).expand_as(X)
    with torch.no_grad():
        drop = model(X)[0, 0] - model(coloured)[0, 0]
    assert result.params["superpixels"] == 1 and result.extras["weights"][0] == pytest.approx(float(drop), rel=1e-3)
    with pytest.raises(DlxError, match="lime.fill: 3 values"):
        explain("lime", model, X, 0, samples=10, fill=[1.0, 2.0, 3.0])


def test_lime_records_every_parameter_it_used():
    result = explain("lime", linear_image_model(W), X, 0, samples=50, fill=0.0)
    for key in ("segmentation", "segments", "compactness", "superpixels", "fill", "samples", "batch_size",
                "kernel_width", "surrogate", "alpha", "seed", "intercept", "surrogate_r2"):
        assert key in result.params


def test_class_visualisation_climbs_to_the_regularised_optimum():
    # xi_0 = W0 . x + b is maximised minus lambda ||x||^2 at x = W0 / (2 lambda)
    result = explain("classviz", linear_image_model(W), X, 0, steps=300, lr=0.2, l2=0.5)
    assert torch.allclose(result.raw, W[0].reshape(2, 2, 2), atol=1e-4)


def test_filters_are_the_first_conv_layers_weights():
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.Conv2d(5, 4, 3))
    result = explain("filters", model, torch.rand(1, 2, 8, 8), 0)
    assert torch.equal(result.raw, model[0].weight) and result.params["layer"] == "0"


def test_rescaling_keeps_a_constant_map_constant_and_reaches_the_input_size():
    up = to_input_size(torch.full((4, 4), 2.0), (8, 8), sigma=0.5)
    assert up.shape == (8, 8) and torch.allclose(up, torch.full((8, 8), 2.0))
    peak = torch.zeros(5, 5)
    peak[2, 2] = 1.0
    smoothed = to_input_size(peak, (5, 5), sigma=1.0)
    assert smoothed[2, 2] < 1.0 and smoothed[2, 3] > 0 and smoothed.argmax() == 12


@pytest.mark.parametrize("entry", explainers.list(), ids=lambda e: e.name)
def test_every_explainer_runs_on_a_small_cnn(entry, device):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3))
    model.attention_maps = lambda x: {"uniform": torch.full((len(x), 2, 3), 1 / 3)}  # the hook, for 'attention'
    small = {"lime": {"samples": 64}, "smoothgrad": {"samples": 4}, "classviz": {"steps": 5}}.get(entry.name, {})
    result = explain(entry.name, model.to(device), torch.rand(1, 3, 8, 8, device=device), 1, **small)
    assert torch.isfinite(result.raw).all() and result.params is not None


def test_smoothgrad_averages_each_noisy_copys_saliency_map():
    """The course averages the saliency maps: the channel maximum of each noisy copy, then the mean (the other order
    lets the channels of different copies mix). The reference draws the same noise and asks captum for each copy."""
    from captum.attr import Saliency

    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Tanh(), nn.Flatten(), nn.Linear(12, 2)).eval()
    result = explain("smoothgrad", model, X, 0, samples=6, batch_size=4, noise=0.5, seed=1)
    stdev = 0.5 * float(X.max() - X.min())
    noisy = X + stdev * torch.randn((6, *X.shape[1:]), generator=torch.Generator().manual_seed(1))
    gradients = torch.cat([Saliency(model).attribute(copy[None].requires_grad_(), target=0, abs=True) for copy in noisy])
    assert torch.allclose(result.raw, gradients.amax(dim=1).mean(dim=0), atol=1e-6)
    assert not torch.allclose(result.raw, gradients.mean(dim=0).amax(dim=0), atol=1e-3)  # the order matters here


@pytest.mark.parametrize("image, negative", [([[1.0, 2.0], [3.0, 4.0]], False), ([[-1.0, -2.0], [-3.0, -4.0]], True)])
def test_gradcam_says_when_its_map_is_blank_because_every_position_is_negative(image, negative):
    result = explain("gradcam", TwoMaps(READOUT), torch.tensor(image)[None, None], 0)  # M = ReLU(0.5 x)
    assert bool(result.raw.any()) != negative
    assert (result.note is not None) == negative
    if negative:
        assert "negative everywhere" in result.note and "gradcam_weighted_sum.npy" in result.note


def largest_activation(model: nn.Module, x: torch.Tensor) -> int:
    return max(math.prod(layer.shape[1:]) for layer in layers.trace(model, x))


@pytest.mark.parametrize("in_shape, build", [
    ((1, 8, 8), lambda: nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2048, 10))),
    ((3, 32, 32), lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 64, 3, padding=1),
                                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))),
    ((4,), lambda: nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))),
])
def test_lime_batches_by_the_bytes_of_the_largest_activation(in_shape, build):
    from dlx.explain.lime import CACHE_BYTES, batch_for

    model, x = build().eval(), torch.rand(1, *in_shape)
    expected = max(1, min(500, CACHE_BYTES // (4 * largest_activation(model, x))))  # float32: 4 bytes a value
    assert batch_for(model, x, 500) == expected
    assert explain("lime", model, x, 0, samples=500).params["batch_size"] == expected


def test_lime_scores_do_not_depend_on_the_batch():
    from dlx.explain.lime import class_scores

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(64, 2)).eval()
    x, segments = torch.rand(1, 1, 4, 4), torch.arange(16).reshape(4, 4) // 4
    samples = torch.randint(0, 2, (50, 4), generator=torch.Generator().manual_seed(0))
    whole, pieces = (class_scores(model, x, torch.zeros_like(x), segments, samples, 1, b) for b in (50, 7))
    assert torch.allclose(whole, pieces, atol=1e-6)


def test_a_panel_draws_every_view_of_a_map_on_one_colour_map():
    """A signed map (LIME's weights) whose smoothed view lost its negative values stays on the diverging map."""
    import matplotlib.pyplot as plt

    from dlx.explain import render

    raw = np.array([[1.0, -0.01], [0.5, 0.8]])
    figure = render.panel(np.zeros((2, 2, 1)), raw, np.array([[0.9, 0.2], [0.6, 0.7]]), "t")
    maps = [ax.images[-1].get_cmap().name for ax in figure.axes[1:4]]
    plt.close(figure)
    assert maps == ["RdBu_r"] * 3


@pytest.mark.filterwarnings("ignore:An ill-conditioned matrix")  # scikit-learn's own, on the singular case
@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0, 100.0])
@pytest.mark.parametrize("constant_column", [False, True])
def test_lime_s_ridge_is_scikit_learn_s_ridge(alpha, constant_column):
    """The top_k surrogate solves Ridge's weighted problem in closed form: coefficients, intercept and R^2 as
    scikit-learn's Ridge(alpha).fit(x, y, sample_weight) and .score give them, to 1e-9."""
    from sklearn.linear_model import Ridge

    from dlx.explain.lime import ridge, weighted_r2

    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (500, 12)).astype(float)
    if constant_column:
        x[:, 3] = 1.0  # a superpixel every sample keeps: singular without regularisation
    y, weights = x @ rng.normal(size=12) + rng.normal(scale=0.3, size=500) + 2.0, rng.random(500)
    reference = Ridge(alpha=alpha).fit(x, y, sample_weight=weights)
    coef, intercept = ridge(x, y, weights, alpha)
    if not (constant_column and alpha == 0):  # singular: both give a solution, not necessarily the same one
        np.testing.assert_allclose(coef, reference.coef_, rtol=1e-9, atol=1e-9)
        assert intercept == pytest.approx(reference.intercept_, rel=1e-9, abs=1e-9)
    assert weighted_r2(x, y, weights, coef, intercept) == pytest.approx(reference.score(x, y, sample_weight=weights),
                                                                        rel=1e-9)


def test_lime_s_r2_of_constant_scores_is_scikit_learn_s():
    from dlx.explain.lime import weighted_r2

    x, y, weights = np.ones((4, 1)), np.full(4, 2.0), np.ones(4)
    assert weighted_r2(x, y, weights, np.zeros(1), 2.0) == 1.0 and weighted_r2(x, y, weights, np.zeros(1), 1.0) == 0.0


def test_lime_scores_in_the_channels_last_layout_are_the_model_s_and_leave_its_weights_as_they_were():
    from dlx.explain.lime import class_scores

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 2)).eval()
    x, segments = torch.rand(1, 3, 8, 8), torch.arange(64).reshape(8, 8) // 16
    samples = torch.randint(0, 2, (20, 4), generator=torch.Generator().manual_seed(0))
    weights = [(p.data_ptr(), p.stride()) for p in model.parameters()]
    scores = class_scores(model, x, torch.zeros_like(x), segments, samples, 1, 8)
    with torch.no_grad():
        expected = torch.stack([model(torch.where(s[segments].bool(), x, 0.0))[0, 1] for s in samples]).double()
    assert torch.allclose(scores, expected, atol=1e-5)
    assert [(p.data_ptr(), p.stride()) for p in model.parameters()] == weights  # the model's own weights again
