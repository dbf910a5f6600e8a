"""The recipe's stages, each `python -m scripts.<name> --help` from models/recipe/, in pipeline order: data_*,
train_*, export_*, eval_* (README.md draws the tree)."""
