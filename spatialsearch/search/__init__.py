"""The search half: everything that talks to Ray Tune, Optuna or MLflow, over typed cores.

docs/architecture.md draws the modules and the one-way flow between them.
"""
