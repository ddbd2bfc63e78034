"""Hyperparameter sweeps on Optuna: a search space over dotted config paths, each trial an ordinary run.

space.py   the space -> sampled values -> `--set`-style overrides
spec.py    the sweep file, checked whole before any trial starts
study.py   storage, samplers, pruners, and exact trial accounting across workers and machines
worker.py  one worker process: claim a trial, train it, report each epoch for pruning
engine.py  `dlx sweep`: set up, run the workers, report
report.py  the table, importances, best.yaml and plots
"""
