"""Judge a generative run's samples with a trained digits classifier, as the issue's must-show measures them (the
project's judge, eval.judge, is built elsewhere): samples from the prior, the generator's standardisation undone and
pixels clipped to [0, 1], the classifier's standardisation applied; the share labelled with confidence >= 0.9 and the
classes among those. Run as a script: python -m tests.judging GENERATOR_RUN CLASSIFIER_RUN [N] [SEED]."""
from __future__ import annotations

import sys

import torch

from dlx.models.generative import sample
from dlx.run.trained import open_trained

CONFIDENT = 0.9


@torch.no_grad()
def judge(generator_run, classifier_run, n: int = 1000, seed: int = 0) -> dict:
    generator = open_trained(generator_run, device="cpu")
    classifier = open_trained(classifier_run, device="cpu")
    samples = sample(generator.model, n, seed, torch.device("cpu"))
    raw = (generator.standardizer.invert(samples) if generator.standardizer else samples).clamp(0, 1)
    x = classifier.standardizer(raw) if classifier.standardizer else raw
    probabilities = classifier.model(x).softmax(dim=1)
    confidence, label = probabilities.max(dim=1)
    confident = label[confidence >= CONFIDENT]
    return {"samples": n, "confident_share": len(confident) / n, "confident_classes": sorted(set(confident.tolist())),
            "classes": sorted(set(label.tolist())), "per_class": torch.bincount(confident, minlength=10).tolist()}


if __name__ == "__main__":
    args = sys.argv[1:]
    print(judge(args[0], args[1], *(int(a) for a in args[2:])))
