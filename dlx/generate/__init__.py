"""Text from a trained language model: sampling (temperature, top-k, top-p), greedy and beam search."""
