"""Every dataset family: importing this module registers them all (dlx.registry.datasets does, on first use)."""
from dlx.data import corpora, embedded, files, oak, pair_tasks, parallel, sequences, shards, synthetic, vision  # noqa: F401
