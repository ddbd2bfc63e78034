"""A generated corpus with planted structure, and the settings that learn word vectors from it in seconds."""
from __future__ import annotations

import random
from pathlib import Path

# words of a group are used in identical contexts: each is the other's nearest neighbour once vectors are learned
GROUPS = {"cat": "dog", "apple": "pear", "king": "queen", "sword": "shield"}
TEMPLATE = "the {} likes the {} , and a {} hates a {} ."  # each group has a place of its own


def planted_corpus(path: Path, sentences: int = 1200, seed: int = 0) -> Path:
    draw = random.Random(seed)
    pairs = list(GROUPS.items())
    lines = [TEMPLATE.format(*(draw.choice(pair) for pair in pairs)) for _ in range(sentences)]
    path.write_text("\n".join(lines) + "\n")
    return path


def experiment(folder: Path, objective: str = "skipgram", negatives: int = 5) -> Path:
    """An experiment that learns word vectors from a planted corpus in `folder`, in seconds."""
    corpus = planted_corpus(folder / "planted.txt")
    path = folder / f"planted_{objective}.yaml"
    path.write_text(f"""name: planted_{objective}
data: {{name: text, path: {corpus}, tokenizer: words, min_count: 1, split: [0.8, 0.1, 0.1]}}
model: {{name: word2vec, width: 16}}
objective: {{name: {objective}, window: 2, negatives: {negatives}, subsample: 0}}
optimizer: {{name: adam, lr: 0.02}}
train: {{epochs: 4, batch_size: 128, device: cpu, threads: 1, monitor: val/loss}}
""")
    return path
