"""Training curves: :meth:`blockprop.model.History.plot` draws loss and accuracy per epoch.

matplotlib is an optional extra (``pip install '.[plot]'`` from a clone), imported only here and
only when a plot is drawn. The figure is built without pyplot, so no display or backend is needed.
A PNG carries the plotted numbers as a text chunk (``blockprop:history``, JSON), so a test or a
script can read back what was drawn without looking at pixels.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

PNG_KEY = "blockprop:history"
# Panels in order; each draws its training curve and, when present, its validation curve.
PANELS = ("loss", "accuracy")


def _matplotlib_figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("History.plot needs matplotlib: pip install matplotlib (or, from a "
                          "blockprop clone, pip install '.[plot]')") from None
    return Figure


def curves(epochs: List[int], history: Dict[str, List[float]]) -> Dict[str, Any]:
    """The numbers that are plotted: epoch numbers (from 1) and each drawn metric."""
    drawn = {key: [float(v) for v in history[key]]
             for name in PANELS for key in (name, f"val_{name}") if key in history}
    return {"epoch": [e + 1 for e in epochs], **drawn}


def plot_history(epochs: List[int], history: Dict[str, List[float]],
                 path: Optional[str] = None) -> Any:
    """A matplotlib ``Figure`` of loss and accuracy per epoch (training, and validation when
    ``fit`` had ``validation_data``); saved to ``path`` when given (format from its suffix)."""
    data = curves(epochs, history)
    panels = [name for name in PANELS if name in data]
    if not panels:
        raise ValueError("History.plot: nothing to plot (no 'loss' or 'accuracy' recorded; "
                         "has fit run for at least one epoch?)")
    Figure = _matplotlib_figure()
    fig = Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        ax.plot(data["epoch"], data[name], marker="o", markersize=3, label="training")
        if f"val_{name}" in data:
            ax.plot(data["epoch"], data[f"val_{name}"], marker="o", markersize=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if path is not None:
        path = os.fspath(path)
        is_png = path.lower().endswith(".png")
        fig.savefig(path, dpi=100, metadata={PNG_KEY: json.dumps(data)} if is_png else None)
    return fig
