"""Training: the loop (loop.py), its progress display, interrupts, samples, TensorBoard and data-parallel launch.

The package is also `dlx.train(experiment, set=..., name=..., quiet=...)`, dlx.api.train (see dlx.CallablePackage).
"""
import sys

from dlx import CallablePackage

sys.modules[__name__].__class__ = CallablePackage
