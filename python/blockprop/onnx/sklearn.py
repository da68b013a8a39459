"""skl2onnx converters for blockprop's scikit-learn estimators, so that ``skl2onnx.to_onnx``
converts a ``Pipeline`` (or any composite) that holds a blockprop ``MLPClassifier`` /
``MLPRegressor``::

    from blockprop.onnx.sklearn import register_skl2onnx
    register_skl2onnx()
    onx = skl2onnx.to_onnx(make_pipeline(StandardScaler(), MLPClassifier()).fit(X, y), X[:1])

The converter places the graph of :func:`blockprop.onnx.to_onnx` in skl2onnx's, so a classifier
has skl2onnx's outputs (``label``, and ``probabilities`` or, with the default option
``zipmap=True``, a list of ``{class: probability}`` maps). This module needs scikit-learn (it
imports :mod:`blockprop.sklearn`); skl2onnx is imported only by :func:`register_skl2onnx`.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from ..sklearn import MLPClassifier, MLPRegressor
from ._common import DEFAULT_OPSET
from .export import to_onnx

__all__ = ["register_skl2onnx"]

ALIASES = {MLPClassifier: "BlockpropMLPClassifier", MLPRegressor: "BlockpropMLPRegressor"}


def _tensor_types() -> Dict[str, Any]:
    from skl2onnx.common.data_types import (BooleanTensorType, DoubleTensorType, FloatTensorType,
                                            Int64TensorType, StringTensorType)
    return {"float32": FloatTensorType, "float64": DoubleTensorType, "int64": Int64TensorType,
            "bool": BooleanTensorType, "object": StringTensorType}


def _shape_calculator(operator: Any) -> None:
    """Output types of one blockprop estimator in skl2onnx's graph: those of ``to_onnx``."""
    est = operator.raw_operator
    types = _tensor_types()
    n = operator.inputs[0].get_first_dimension()
    model = est.model_
    value_type = types[model.dtype.name]
    if hasattr(est, "classes_"):
        classes = np.asarray(est.classes_)
        multilabel = est.out_activation_ == "logistic" and model.out_features == len(classes)
        if multilabel:
            operator.outputs[0].type = types["int64"]([n, len(classes)])
        else:
            kind = {"i": "int64", "u": "int64", "b": "bool", "f": classes.dtype.name}.get(classes.dtype.kind, "object")
            operator.outputs[0].type = types[kind]([n])
        operator.outputs[1].type = value_type([n, len(classes)])
    else:
        operator.outputs[0].type = value_type([n, model.out_features])


def _converter(scope: Any, operator: Any, container: Any) -> None:
    """Copies the nodes and weights of ``to_onnx(estimator)`` into skl2onnx's container, its
    tensors renamed apart from the rest of the graph."""
    from onnx import TensorProto, helper, numpy_helper
    est = operator.raw_operator
    opset = container.target_opset or DEFAULT_OPSET
    graph = to_onnx(est, opset=max(opset, 13)).graph
    prefix = scope.get_unique_variable_name("blockprop")
    names = {o.name: v.full_name for o, v in zip(graph.output, operator.outputs)}
    x = operator.inputs[0].full_name
    wanted = helper.tensor_dtype_to_np_dtype(graph.input[0].type.tensor_type.elem_type)
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != graph.input[0].type.tensor_type.elem_type:
        cast = f"{prefix}_X"
        container.add_node("Cast", [x], [cast], name=f"{prefix}_cast",
                           to=helper.np_dtype_to_tensor_dtype(wanted))
        x = cast
    names[graph.input[0].name] = x
    rename = lambda name: names.get(name) or f"{prefix}_{name}"  # noqa: E731
    for t in graph.initializer:
        if t.data_type == TensorProto.STRING:
            content: Any = [s.decode() if isinstance(s, bytes) else str(s) for s in numpy_helper.to_array(t).ravel()]
        else:
            content = t
        container.add_initializer(rename(t.name), t.data_type, list(t.dims), content)
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, [rename(i) for i in node.input], [rename(o) for o in node.output],
                           name=f"{prefix}_{node.name}", **attrs)


def register_skl2onnx() -> None:
    """Register blockprop's ``MLPClassifier`` and ``MLPRegressor`` with skl2onnx (it needs
    ``pip install skl2onnx``); calling it again changes nothing."""
    try:
        from skl2onnx import update_registered_converter
    except ImportError as e:
        raise ImportError(f"register_skl2onnx needs skl2onnx: pip install skl2onnx ({e})") from None
    for cls, alias in ALIASES.items():
        # zipmap as skl2onnx's classifiers; nocl (class indices for labels) is not offered
        options = {"zipmap": [True, False, "columns"], "nocl": [False]} if cls is MLPClassifier else None
        update_registered_converter(cls, alias, _shape_calculator, _converter, options=options)
