"""Training objectives: how a batch becomes the losses a run minimises, with which optimizers, and what validation
measures. Each module registers one objective in dlx.registry.objectives on import; `supervised` is the default."""
from dlx.objectives import gan, metric, seq2seq, supervised, vae, word2vec  # noqa: F401
