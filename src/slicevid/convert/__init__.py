"""Importers for checkpoints written by other frameworks."""

from .keras import load_keras_h5

__all__ = ["load_keras_h5"]
