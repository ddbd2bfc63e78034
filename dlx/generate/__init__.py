"""`dlx generate`: text from a trained run's language model; the decoding itself (sampling, greedy, beam search) is
dlx.models.decode, which training's samples use too."""
