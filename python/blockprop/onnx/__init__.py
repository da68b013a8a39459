"""ONNX, both ways: :func:`to_onnx` writes a blockprop ``Sequential`` or fitted scikit-learn
estimator as an ONNX model (for ONNX Runtime and every other ONNX consumer); :func:`from_onnx`
reads an MLP graph (from PyTorch, skl2onnx or blockprop) back as a ``Sequential``.
:func:`blockprop.onnx.sklearn.register_skl2onnx` lets skl2onnx convert pipelines that hold
blockprop's estimators.

Needs the ``onnx`` package (``pip install onnx onnxruntime``; in a clone ``pip install '.[onnx]'``),
imported only when a function here runs: ``import blockprop.onnx`` works without it.
"""
from .export import to_onnx
from .reader import from_onnx

__all__ = ["to_onnx", "from_onnx"]
