"""What the ONNX exporter and importer share: the lazy import of the ``onnx`` package (an optional
dependency) and the opsets blockprop writes."""
from __future__ import annotations

from typing import Any

# torch.onnx.export's default opset; LayerNormalization needs 17, the Gelu operator 20 (below
# that GELU is written as its erf formula).
DEFAULT_OPSET = 18
MIN_OPSET = 13  # Softmax over one axis (not a flattened 2-D view) from 13 on


def onnx_module() -> Any:
    """The ``onnx`` package, or ``ImportError`` saying how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("blockprop.onnx needs the onnx package: pip install onnx onnxruntime "
                          f"(or blockprop's extra: pip install '.[onnx]' in a clone) ({e})") from None
    return onnx


def node_label(node: Any, index: int) -> str:
    """How an error names a graph node: its name (or its position) and its op."""
    name = node.name or f"#{index}"
    domain = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
    return f"node {name!r} (op {domain}{node.op_type})"
