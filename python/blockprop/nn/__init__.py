"""Layers, losses and the ``Sequential`` model."""
from .layers import Dense, Layer, Parameter, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, Loss, MSELoss, get_loss  # noqa: F401
from .sequential import Sequential  # noqa: F401  (imported last: it needs layers and losses)

__all__ = ["Layer", "Parameter", "Dense", "ReLU", "Sigmoid", "Tanh", "Softmax", "Sequential",
           "Loss", "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "get_loss"]
