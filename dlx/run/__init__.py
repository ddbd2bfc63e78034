"""The run layer: the run folder (folder.py), the checkpoint format (checkpoint.py) and one way to open a trained run
(trained.py). No module outside this package reads a checkpoint's keys.

This package's __init__ imports nothing: `dlx runs` reads run folders without loading torch.
"""
