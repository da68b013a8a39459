"""Layers, losses and the ``Sequential`` model."""
from .layers import (ELU, GELU, BatchNorm1d, Dense, Dropout, Layer, LayerNorm, LeakyReLU,  # noqa: F401
                     Parameter, ReLU, Sigmoid, Softmax, Softplus, Tanh)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss, get_loss  # noqa: F401
from .sequential import Sequential  # noqa: F401
from .ensemble import Ensemble  # noqa: F401

__all__ = ["Layer", "Parameter", "Dense", "ReLU", "Sigmoid", "Tanh", "Softmax", "LeakyReLU", "ELU",
           "GELU", "Softplus", "Dropout", "BatchNorm1d", "LayerNorm", "Sequential", "Ensemble",
           "Loss", "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "get_loss"]
