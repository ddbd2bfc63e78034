"""Every registered model trains on data it fits, and the course's architectures have their exact shapes."""
from __future__ import annotations

import fnmatch

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlx.analysis import decide
from dlx.data.base import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, SEQ2SEQ, DataSpec
from dlx.errors import DlxError
from dlx.registry import models, objectives

# settings that keep each model small enough to train for a few steps in well under a second
SMALL = {
    "mlp": {"sizes": "16"}, "autoencoder": {"sizes": "16", "code": 4}, "conv_autoencoder": {"channels": "4-8"},
    "cnn": {"width": 4, "hidden": 16}, "mnist_strong_cnn": {"hidden": 32}, "cifar10_vanilla_cnn": {"hidden": 32},
    "vgg*": {"width_mult": 0.0625, "hidden": "32"}, "resnet*": {"width": 4}, "resnet18": {"width": 8},
    "tv_*": {"freeze": "trunk"},  # the new head learns; fine-tuning the trunk is torchvision's own code
    "rnn": {"hidden": 16}, "lstm": {"hidden": 16, "layers": 2, "bidirectional": True}, "gru": {"hidden": 16},
    "conv1d": {"channels": "8-8"}, "dcgan": {"width": 8, "noise": 8},
    "char_*": {"hidden": 16, "layers": 1}, "gpt": {"width": 16, "heads": 2, "layers": 1},
    "seq2seq_rnn": {"embedding": 8, "hidden": 16}, "seq2seq_transformer": {"width": 16, "heads": 2, "dropout": 0.0},
}

# the smallest image side each image model takes (16 for the others)
IMAGE_SIDE = {"lenet5": 28, "mnist_small_cnn": 20, "tv_vgg16": 32, "vgg11": 32, "vgg16": 32}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster


def small(name: str) -> dict:
    return next((v for k, v in SMALL.items() if fnmatch.fnmatch(name, k)), {})


def fitting_data(name: str) -> tuple[DataSpec, torch.Tensor, torch.Tensor]:
    """A small learnable dataset of the kind the model takes: (spec, inputs, targets)."""
    entry, g = models.get(name), torch.Generator().manual_seed(0)
    if name == "word2vec":  # the word after each word of a repeating sequence: skip-gram's (centre, context) pairs
        centres = torch.randint(0, 5, (64, 1), generator=g)
        return DataSpec((1,), LANGUAGE, num_classes=5, class_names=tuple("abcde")), centres, (centres[:, 0] + 1) % 5
    if entry.meta.get("task") == LANGUAGE:  # next token of a repeating sequence
        tokens = (torch.arange(32 * 17).reshape(32, 17) % 5 + torch.randint(0, 5, (32, 1), generator=g)) % 5
        return DataSpec((16,), LANGUAGE, num_classes=5, class_names=tuple("abcde")), tokens[:, :-1], tokens[:, 1:]
    if entry.meta.get("task") == SEQ2SEQ:  # reverse strings of 3 letters: x (B, S), y = <s>, reversal, </s>
        source = torch.randint(3, 6, (32, 3), generator=g)
        y = torch.cat([torch.ones(32, 1, dtype=torch.long), source.flip(1), torch.full((32, 1), 2)], dim=1)
        return DataSpec((3,), SEQ2SEQ, num_classes=6, class_names=tuple("_^$abc"), source_names=tuple("_^$abc")), source, y
    if entry.meta.get("inputs") == "sequence":  # is the mean of the sequence positive?
        x = torch.randn(64, 12, 2, generator=g)
        return DataSpec((12, 2), CLASSIFICATION, num_classes=2), x, (x[..., 0].mean(1) > 0).long()
    if entry.meta.get("inputs") == "image":  # which half of the image is brighter? RGB, as CIFAR
        side = IMAGE_SIDE.get(name, 16)
        y = torch.randint(0, 2, (16,), generator=g)
        x = torch.randn(16, 3, side, side, generator=g)
        x[:, :, : side // 2] += (2 * y - 1).float().view(-1, 1, 1, 1)
        if entry.meta.get("objective") == "gan":  # pixels in [0, 1] as dlx reads them (dcgan's sigmoid), off-centre
            x = x.sigmoid() / 2
        task = entry.meta.get("task", CLASSIFICATION)
        if task == RECONSTRUCTION:
            return DataSpec((3, side, side), task), x, x
        return DataSpec((3, side, side), task, num_classes=2), x, y
    x = torch.randn(64, 6, generator=g)  # tables: two classes split by a plane, or the table itself
    if entry.meta.get("objective") == "gan":  # a generator must move its samples to where the data is
        return DataSpec((6,), CLASSIFICATION, num_classes=2), x + 3, (x[:, 0] > 0).long()
    if entry.meta.get("task") == RECONSTRUCTION:
        return DataSpec((6,), RECONSTRUCTION), x, x
    return DataSpec((6,), CLASSIFICATION, num_classes=2), x, (x[:, 0] + x[:, 1] > 0).long()


def loss_of(spec: DataSpec, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if spec.task == RECONSTRUCTION:
        return F.mse_loss(out, y)
    if spec.task == LANGUAGE:
        return F.cross_entropy(out.flatten(0, 1), y.flatten())  # (B, T, V) logits
    return F.cross_entropy(out, y)


class TaskLoss(nn.Module):
    def __init__(self, spec: DataSpec):
        super().__init__()
        self.spec = spec

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_of(self.spec, out, y)


@torch.no_grad()
def sample_distance(model: nn.Module, x: torch.Tensor) -> float:
    """A generator's progress: its samples' mean's distance from the data's (GAN losses oscillate by design)."""
    return (model(model.sample_noise(256, x.device)).mean(0) - x.mean(0)).norm().item()


@pytest.mark.parametrize("name", models.names())
def test_every_model_learns_a_little(name):
    """Trained by the objective it is made for, each parameter group by its own optimizer."""
    torch.manual_seed(0)
    spec, x, y = fitting_data(name)
    entry = models.get(name)
    model = entry.build(spec, **entry.resolve(small(name), "model"))
    trained_by = entry.meta.get("objective", "supervised")  # a model made for several objectives: the first
    objective = objectives.get(trained_by if isinstance(trained_by, str) else trained_by[0]).build(model, spec, TaskLoss(spec))
    nets = {group: objective.network(group) for group in objective.groups}
    optimizers = {g: torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=5e-3) for g, net in nets.items()}
    losses = []
    generative = entry.meta.get("objective") == "gan"
    before = sample_distance(model, x) if generative else None
    for _ in range(10):  # full batch: the loss falls unless the model cannot learn
        for group in objective.groups:
            loss = objective.loss(group, nets, x, y)
            optimizers[group].zero_grad()
            loss.backward()
            optimizers[group].step()
            if group == objective.groups[-1]:
                losses.append(loss.item())
    if generative:
        assert sample_distance(model, x) < 0.97 * before
    else:
        assert losses[-1] < 0.97 * losses[0], losses


def test_small_mnist_cnn_has_the_notes_shapes():
    spec = DataSpec((1, 28, 28), CLASSIFICATION, num_classes=10)
    model = models.get("mnist_small_cnn").build(spec)
    shapes, x = [], torch.zeros(2, 1, 28, 28)
    for layer in [*model.features, *model.head]:
        x = layer(x)
        if not isinstance(layer, torch.nn.ReLU):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(6, 24, 24), (12, 20, 20), (12, 10, 10), (12, 6, 6), (12, 3, 3), (108,), (256,), (10,)]


def test_mnist_strong_cnn_follows_the_notes():
    model = models.get("mnist_strong_cnn").build(DataSpec((1, 28, 28), CLASSIFICATION, num_classes=10))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(20, (5, 5)), (40, (5, 5))]
    assert [(d.in_features, d.out_features) for d in dense] == [(640, 1000), (1000, 1000), (1000, 10)]
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]


def test_lenet1_follows_the_notes():
    """16x16 (256) -> 12 maps of 8x8 (768) -> 12 maps of 4x4 (192) -> 30 -> 10."""
    model = models.get("lenet1").build(DataSpec((1, 16, 16), CLASSIFICATION, num_classes=10))
    x, shapes = torch.zeros(2, 1, 16, 16), []
    for layer in [*model.features, *model.head]:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(12, 8, 8), (12, 4, 4), (30,), (10,)]


@pytest.mark.parametrize("name, blocks", [("resnet20", 9), ("resnet32", 15), ("resnet56", 27), ("resnet18", 8)])
def test_resnet_depths(name, blocks):
    from dlx.models.resnet import BasicBlock
    model = models.get(name).build(DataSpec((3, 32, 32), CLASSIFICATION, num_classes=10))
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == blocks
    convs = sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1) for m in model.modules())
    assert convs + 1 == int(name[len("resnet"):])  # the depth counts the 3x3 convs and the output layer


@pytest.mark.parametrize("name, convs", [("vgg11", 8), ("vgg16", 13), ("cifar10_vanilla_cnn", 4)])
def test_vgg_layouts_take_cifar_and_imagenet_sizes(name, convs):
    entry = models.get(name)
    for side in (32, 224):
        model = entry.build(DataSpec((3, side, side), CLASSIFICATION, num_classes=7),
                            **entry.resolve({"width_mult": 0.0625}, "model"))
        assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == convs
        assert model(torch.zeros(1, 3, side, side)).shape == (1, 7)


@pytest.mark.parametrize("name, in_shape, problem", [
    ("mnist_small_cnn", (10,), "needs images"),
    ("lenet5", (1, 8, 8), "8x8 image is too small"),
    ("vgg16", (3, 16, 16), "16x16 image is too small"),
    ("lstm", (1, 8, 8), "needs sequences"),
    ("conv_autoencoder", (1, 10, 10), "divisible by 4"),
])
def test_a_model_that_cannot_take_the_data_says_so(name, in_shape, problem):
    task = RECONSTRUCTION if "autoencoder" in name else CLASSIFICATION
    spec = DataSpec(in_shape, task, num_classes=0 if task == RECONSTRUCTION else 10)
    with pytest.raises(DlxError, match=problem):
        models.get(name).build(spec)


def test_perceptron_outputs_the_unit_step_of_its_potential():
    model = models.get("perceptron").build(DataSpec((2,), CLASSIFICATION, num_classes=2))
    with torch.no_grad():
        model.neuron.weight.copy_(torch.tensor([[1.0, -1.0]]))
        model.neuron.bias.fill_(0.5)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [2.0, 3.0]])  # xi = 0.5, -0.5, -0.5
    assert model.decide(x).tolist() == [1, 0, 0]
    assert model(x).argmax(1).tolist() == [1, 0, 0]  # what accuracy counts is the same decision
    on_the_line = torch.tensor([[0.5, 1.0]])  # xi = 0: the course's unit step is 1 there
    assert model.decide(on_the_line).tolist() == [1]
    assert decide(model(on_the_line).softmax(1), 0.5).tolist() == [1]  # and so is dlx evaluate's decision
    with pytest.raises(DlxError, match="two classes"):
        models.get("perceptron").build(DataSpec((2,), CLASSIFICATION, num_classes=3))


def test_autoencoder_must_reconstruct():
    with pytest.raises(DlxError, match="data.reconstruct: true"):
        models.get("autoencoder").build(DataSpec((6,), CLASSIFICATION, num_classes=2))


def test_sparsity_adds_the_l1_gradient_of_the_code():
    entry = models.get("autoencoder")
    spec = DataSpec((6,), RECONSTRUCTION)
    x = torch.randn(5, 6)
    grads = []
    for sparsity in (0.0, 0.3):
        torch.manual_seed(0)
        model = entry.build(spec, **entry.resolve({"sizes": "", "code": 3, "activation": "identity",
                                                   "sparsity": sparsity}, "model"))
        F.mse_loss(model(x), x).backward()
        grads.append(model.encoder[1].bias.grad)  # the code is this linear layer's output: d code / d bias = 1
    code = model.encode(x)
    assert torch.allclose(grads[1] - grads[0], 0.3 * code.sign().sum(0) / 5, atol=1e-6)


def test_recurrent_outputs():
    spec = DataSpec((7, 3), CLASSIFICATION, num_classes=4)
    x = torch.randn(2, 7, 3)
    for output, shape in [("last", (2, 4)), ("mean", (2, 4)), ("steps", (2, 4, 7))]:
        for cell in ("rnn", "lstm", "gru"):
            entry = models.get(cell)
            model = entry.build(spec, **entry.resolve({"output": output, "layers": 2, "bidirectional": True,
                                                       "hidden": 5}, "model"))
            assert model(x).shape == shape


def test_logistic_steepness():
    entry = models.get("mlp")
    model = entry.build(DataSpec((3,), CLASSIFICATION, num_classes=2),
                        **entry.resolve({"activation": "logistic", "steepness": 2.5}, "model"))
    logistic = next(m for m in model.modules() if type(m).__name__ == "Logistic")
    x = torch.linspace(-3, 3, 7)
    assert torch.allclose(logistic(x), 1 / (1 + torch.exp(-2.5 * x)))


def test_mlp_takes_the_course_layer_string():
    entry, spec = models.get("mlp"), DataSpec((2,), CLASSIFICATION, num_classes=2)
    model = entry.build(spec, **entry.resolve({"layers": "2-4-3-2"}, "model"))
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)] == \
        [(2, 4), (4, 3), (3, 2)]
    with pytest.raises(DlxError, match="must start with the data's 2 inputs and end with its 2 outputs"):
        entry.build(spec, **entry.resolve({"layers": "4-4-3-2"}, "model"))


def test_evaluating_runs_without_gradients_in_eval_mode_and_restores_the_mode_even_on_an_error():
    from dlx.models.modes import evaluating

    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with evaluating(model):
        assert not model.training and not model[1].training and not torch.is_grad_enabled()
    assert model.training and torch.is_grad_enabled()
    with pytest.raises(RuntimeError), evaluating(model):
        raise RuntimeError("a failing forward pass")
    assert model.training
