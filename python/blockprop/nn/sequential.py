"""``Sequential``: a stack of layers with named parameters, a training step and Keras-style
``fit`` / ``evaluate`` / ``predict`` (the loops live in :mod:`blockprop.training`)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, cast

import numpy as np

from .. import optim, serialization, step, training
from ..model import History, Progress
from ..optim import Optimizer
from .layers import Dense, Layer, Parameter, check_dtype
from .losses import Loss
from .usage import USAGE, exclusive, shared, using


class Sequential:
    """Layers applied in order. ``Sequential(Dense(2, 64, "relu"), Dense(64, 3))``.

    Training state (``loss``, ``optimizer``, ``schedule``, ``progress``, ``history``) stays on
    the model, so a second ``fit`` continues the first and ``save`` keeps all of it.
    Threads: inference (``predict*``, ``evaluate``, ``model(X)`` in evaluation mode) and reading
    the weights (``save``, ``state_dict``, ``astype``) change nothing on the model, so any number
    of threads may run them at once on one model, each getting what it would alone. Training
    (``fit``, ``train_step``, ``load_state_dict``) takes the model for itself: started while
    another thread runs either, it raises ``RuntimeError``, and so does inference while another
    thread trains (it never sees weights half-way through an update). Separate models train
    concurrently (:mod:`blockprop.nn.usage`).
    """
    _owner: Optional[int] = None  # thread inside a training method, the method, its nesting depth
    _task = ""
    _depth = 0
    _readers: Dict[int, int]  # thread → calls reading the model it is inside (see usage.enter)

    def __init__(self, *layers: Layer):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layer {i} is {layer!r}, not a blockprop Layer")
        dense = [l for l in layers if isinstance(l, Dense)]
        if not dense:
            raise ValueError("Sequential needs at least one Dense layer")
        dtypes = {getattr(l, "dtype").name for l in layers if isinstance(getattr(l, "dtype", None), np.dtype)}
        if len(dtypes) > 1:
            raise ValueError(f"Sequential: all layers with parameters must share one dtype, got {sorted(dtypes)}")
        features = dense[0].in_features
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense) and layer.in_features != features:
                raise ValueError(f"Sequential: layer {i} ({layer!r}) expects {layer.in_features} input "
                                 f"features but the layer before it gives {features}")
            features = layer.output_features(features)
        self.layers: List[Layer] = list(layers)
        self.loss: Optional[Loss] = None
        self.optimizer: Optional[Optimizer] = None
        self.schedule: Any = None
        self.progress = Progress()
        self.history: Optional[History] = None
        self.stop_training = False  # a callback sets it to end fit after the current epoch
        self.train()

    # --- shape and dtype ----------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return next(l.dtype for l in self.layers if isinstance(l, Dense))

    @property
    def in_features(self) -> int:
        return next(l.in_features for l in self.layers if isinstance(l, Dense))

    @property
    def out_features(self) -> int:
        features = self.in_features
        for layer in self.layers:
            features = layer.output_features(features)
        return features

    @shared
    def astype(self, dtype: Any) -> "Sequential":
        """A copy with parameters of ``dtype`` (architecture, weights, buffers and mode; no
        training state)."""
        check_dtype(dtype)
        return Sequential(*[layer.astype(dtype) for layer in self.layers]).train(self.training)

    # --- mode ---------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Sequential":
        """Training mode (as PyTorch): dropout drops, batch norm uses and updates batch statistics.
        ``fit`` and ``train_step`` train in this mode and restore the mode they found;
        ``evaluate`` and ``predict*`` always compute in evaluation mode, without switching the
        model's. Returns the model."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.training = self.training
        return self

    def eval(self) -> "Sequential":
        """Evaluation mode: dropout is the identity, batch norm uses its running statistics."""
        return self.train(False)

    # --- forward / backward -------------------------------------------------------------------
    def forward(self, X: np.ndarray) -> np.ndarray:
        """The network's output for a batch (no input checks: ``predict`` is the checked way)."""
        return self._forward_from(0, X)

    def _counting_layer(self) -> Optional[Dense]:
        """The first layer when ``predict`` may check X for NaN and infinity inside its GEMM: a
        Dense layer that this class's own forward (not a replaced one) starts with."""
        own_forward = getattr(self.forward, "__func__", None) is Sequential.forward
        first = self.layers[0]
        return first if own_forward and type(first) is Dense and first.out_features > 0 else None

    def _forward_from(self, start: int, X: np.ndarray) -> np.ndarray:
        """``forward`` from layer ``start`` on (``predict`` runs the first layer itself)."""
        for layer in self.layers[start:]:
            X = layer.forward(X)
        return X

    def _infer_from(self, start: int, X: np.ndarray) -> np.ndarray:
        """The evaluation-mode output of layers ``start`` on, changing nothing (``Layer.infer``)."""
        for layer in self.layers[start:]:
            X = layer.infer(X)
        return X

    def _inference(self) -> Optional[Callable[[int, np.ndarray], np.ndarray]]:
        """``_infer_from`` when inference can leave the model unchanged: this class's own forward
        and layers that all have ``infer`` (all of blockprop's do); else None (``forward`` runs in
        evaluation mode, which keeps arrays on the layers)."""
        if getattr(self.forward, "__func__", None) is not Sequential.forward:
            return None
        if any(type(layer).infer is Layer.infer for layer in self.layers):
            return None
        return self._infer_from

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """``forward`` in training mode; in evaluation mode the output computed without changing
        the model (as ``predict``, without its input checks), from any number of threads."""
        if self.training:
            return self.forward(X)
        with using(self, "__call__", exclusive=False):
            return training.infer(self, X)

    def backward(self, dY: np.ndarray, need_dx: bool = False) -> Optional[np.ndarray]:
        """Back-propagate ``dY = ∂loss/∂output`` of the last ``forward``, overwriting every
        parameter's ``grad``; returns ``∂loss/∂X`` when ``need_dx``. (``forward`` keeps what this
        needs on the layers; inference keeps nothing and drops what forward kept.)"""
        for i in range(len(self.layers) - 1, -1, -1):
            dY = cast(np.ndarray, self.layers[i].backward(dY, need_dx=need_dx or i > 0))  # None only at i = 0
        return dY

    def parameters(self) -> Dict[str, Parameter]:
        """``{"0.W": Parameter, "0.b": ...}``: the live parameters, named by layer index."""
        return {f"{i}.{name}": p for i, layer in enumerate(self.layers)
                for name, p in layer.parameters().items()}

    def buffers(self) -> Dict[str, np.ndarray]:
        """``{"1.running_mean": array, ...}``: the live untrained state (running statistics)."""
        return {f"{i}.{name}": b for i, layer in enumerate(self.layers)
                for name, b in layer.buffers().items()}

    @shared
    def state_dict(self) -> Dict[str, np.ndarray]:
        """Copies of the weights and buffers by name (``W`` as ``(out, in)``, like PyTorch's
        ``nn.Linear``)."""
        state = {name: p.data.copy() for name, p in self.parameters().items()}
        state.update({name: b.copy() for name, b in self.buffers().items()})
        return state

    @exclusive
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Copy weights (and buffers) in by name; names and shapes must match exactly."""
        arrays = {name: p.data for name, p in self.parameters().items()}
        arrays.update(self.buffers())
        if set(state) != set(arrays):
            raise ValueError(f"load_state_dict: expected parameters {sorted(arrays)}, got {sorted(state)}")
        # Every entry is converted and checked before the first is written: a refused call
        # leaves the weights as they were.
        values = {}
        for name, a in arrays.items():
            value = np.asarray(state[name])
            if value.shape != a.shape:
                raise ValueError(f"load_state_dict: {name} must have shape {a.shape}, got {value.shape}")
            if value.dtype.kind not in "fiub":
                raise TypeError(f"load_state_dict: {name} must hold numbers, got dtype {value.dtype}")
            values[name] = value.astype(a.dtype)
        for name, a in arrays.items():
            a[...] = values[name]

    def penalty(self, add_grad: bool = False) -> float:
        """The layers' weight penalties (``Dense(l1=, l2=)``) summed; with ``add_grad`` their
        gradients are added to the parameters' grads."""
        return sum((layer.penalty(add_grad) for layer in self.layers if isinstance(layer, Dense)), 0.0)

    # --- training -----------------------------------------------------------------------------
    @exclusive
    def train_step(self, X: Any, y: Any, loss: Any = None, optimizer: Any = None,
                   lr: Optional[float] = None) -> float:
        """One update on the batch ``(X, y)``: forward, loss, backward, optimizer step.

        Uses (and keeps) ``loss``/``optimizer`` if given, else the model's, else cross-entropy and
        ``SGD(0.01)``. Returns the batch's loss before the update.
        """
        # Everything is checked before anything changes: a refused call leaves the model as it was.
        loss_fn = training.resolve_loss(self, loss)
        opt = training.resolve_optimizer(self, optimizer)
        lr = opt.lr if lr is None else optim._check("lr", lr)
        X = training.as_inputs(self, X)
        Y = training.as_targets(self, loss_fn, y, len(X))
        self.loss, self.optimizer = loss_fn, opt
        optim.bind(opt, self)
        was_training = self.training
        self.train()
        try:
            value, _ = step.train_batch(self, X, Y, lr)
        finally:
            self.train(was_training)
        self.progress.updates += 1
        return value

    @exclusive
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, loss: Any = None,
            optimizer: Any = None, schedule: Any = None, validation_data: Any = None,
            shuffle: Any = True, seed: Optional[int] = None, verbose: int = 1,
            callbacks: Optional[List[Any]] = None, diagnostics: Any = False,
            sample_weight: Any = None, precision: str = "float32") -> History:
        """Train in mini-batches; returns the per-epoch History. ``loss``, ``optimizer`` and
        ``schedule`` default to the previous fit's (state included), else "cross_entropy",
        ``SGD(0.01)``, constant. ``callbacks``: :mod:`blockprop.callbacks` objects or plain
        ``fn(epoch, logs)`` callables, run after every epoch. ``diagnostics=True`` records
        per-layer gradient/weight norms, update ratios and dead ReLUs in the history and warns
        (:class:`blockprop.diagnostics.TrainingDiagnosticWarning`) on trouble. ``sample_weight``
        (one weight ≥ 0 per row) makes each batch's loss the weighted mean ``Σ w·ℓ / Σ w``.
        ``precision="bfloat16"``: bfloat16 products, float32 sums and master weights. Ctrl-C stops
        after the current batch and re-raises ``KeyboardInterrupt``. Details:
        :func:`blockprop.training.fit`."""
        return training.fit(self, X, y, epochs=epochs, batch_size=batch_size, loss=loss,
                            optimizer=optimizer, schedule=schedule, validation_data=validation_data,
                            shuffle=shuffle, seed=seed, verbose=verbose, callbacks=callbacks,
                            diagnostics=diagnostics, sample_weight=sample_weight, precision=precision)

    @shared
    def evaluate(self, X: Any, y: Any, batch_size: Optional[int] = None, loss: Any = None,
                 sample_weight: Any = None, precision: str = "float32") -> Dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` on ``(X, y)`` (accuracy for classification losses),
        weighted means with ``sample_weight``."""
        return training.evaluate(self, X, y, batch_size=batch_size, loss=loss,
                                 sample_weight=sample_weight, precision=precision)

    @shared
    def predict(self, X: Any, batch_size: Optional[int] = None,
                precision: str = "float32") -> np.ndarray:
        """The network's outputs (logits for classifiers), computed in batches of ``batch_size``
        rows; None: as many as keep the widest activation under 8 MiB, at least 1024.
        ``precision="bfloat16"``: bfloat16 products, float32 sums."""
        return training.predict(self, X, batch_size=batch_size, precision=precision)

    @shared
    def predict_proba(self, X: Any, batch_size: Optional[int] = None,
                      precision: str = "float32") -> np.ndarray:
        """Class probabilities: softmax of the outputs (sigmoid for a BCE / single-output model)."""
        return training.predict_proba(self, X, batch_size=batch_size, precision=precision)

    @shared
    def predict_classes(self, X: Any, batch_size: Optional[int] = None,
                        precision: str = "float32") -> np.ndarray:
        """Predicted class per row: argmax, or ``output > 0`` for a BCE / single-output model."""
        return training.predict_classes(self, X, batch_size=batch_size, precision=precision)

    # --- persistence and display --------------------------------------------------------------
    @shared
    def save(self, path: str) -> None:
        """Save architecture, weights and training state to ``path`` (see :mod:`blockprop.serialization`)."""
        serialization.save(self, path)

    def __getstate__(self) -> Dict[str, Any]:
        """Pickling and ``copy.deepcopy``: a copy starts free, whichever threads use the original."""
        return {k: v for k, v in vars(self).items() if k not in USAGE}

    def summary(self) -> None:
        """Print a table of the layers, their output shapes and parameter counts."""
        print(self._summary_text())

    def _output_widths(self) -> List[int]:
        """Each layer's output features, in order (the input's are ``in_features``)."""
        widths, features = [], self.in_features
        for layer in self.layers:
            features = layer.output_features(features)
            widths.append(features)
        return widths

    def _summary_text(self) -> str:
        rows, total = [], 0
        for i, (layer, features) in enumerate(zip(self.layers, self._output_widths())):
            count = sum(p.data.size for p in layer.parameters().values())
            total += count
            rows.append((f"{i}: {layer!r}", f"(batch, {features})", f"{count:,}"))
        header = ("Layer", "Output shape", "Params")
        widths = [max(len(r[c]) for r in rows + [header]) for c in range(3)]
        line = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"
        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *map(line, rows), rule,
                          f"Total parameters: {total:,} ({self.dtype.name})"])

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def load(path: str) -> Sequential:
    """The model saved at ``path`` (by ``Sequential.save``), with its loss, optimizer state,
    schedule and progress; damage or a mismatch raises ``ValueError`` (see
    :mod:`blockprop.serialization`). Loading never unpickles."""
    return cast(Sequential, serialization.load(path, lambda layers: Sequential(*layers)))
