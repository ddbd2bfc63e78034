"""Models: each module registers one family in dlx.registry.models on import."""
from dlx.models import (autoencoder, char_rnn, cnn, gan, gpt, lenet, linear, mlp, recurrent, resnet,  # noqa: F401
                        transfer, vae, vgg)
