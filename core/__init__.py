"""Headless core of ResNeXt Studio: data, models, training, prediction, export, runs. Never imports Qt."""

__version__ = "0.1.0"
