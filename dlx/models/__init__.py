"""Models: one family per module, each registering its entries in dlx.registry.models, which imports this package
the first time a model is looked up."""
from dlx.models import (autoencoder, char_rnn, cnn, conv1d, dcgan, gan, gpt, lenet, linear, mlp, recurrent,  # noqa: F401
                        resnet, seq2seq_rnn, seq2seq_transformer, transfer, vae, vgg, word2vec)
