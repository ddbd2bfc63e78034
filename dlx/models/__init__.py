"""Models: each module registers one family in dlx.registry.models on import."""
from dlx.models import char_rnn, cnn, gpt, mlp  # noqa: F401
