"""Explaining a trained classifier: one module per method, each registered in registry.explainers.

dlx.registry.explainers imports this package (and so every method) the first time a method is looked up; run.py applies them to a run, render.py draws the results.
"""
from dlx.explain import attention, classviz, filters, gradcam, lime, occlusion, saliency, smoothgrad  # noqa: F401
