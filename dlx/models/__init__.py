"""Models: each module registers one family in dlx.registry.models on import."""
from dlx.models import cnn, mlp  # noqa: F401
