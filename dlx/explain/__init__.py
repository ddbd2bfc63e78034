"""Explaining a trained classifier: one module per method, each registered in registry.explainers.

Importing this package registers them all; run.py applies them to a run, render.py draws the results.
"""
from dlx.explain import classviz, filters, gradcam, lime, occlusion, saliency, smoothgrad  # noqa: F401
