"""Datasets: one family per module, each registering its entries in dlx.registry.datasets, which imports them
(families.py) the first time a dataset is looked up. This package imports nothing itself, so that settings.py
(what a config says about data) reads without torch."""
