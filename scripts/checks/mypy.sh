#!/usr/bin/env bash
# Type checking with mypy: the package source (configuration: [tool.mypy] in pyproject.toml), then
# a small typed program against the *installed* wheel, which must ship py.typed and _core.pyi, and
# a wrong one that mypy must reject (so the API's types are real, not Any).
set -euo pipefail
: "${VENV:?VENV must point at the virtual environment holding the installed wheel}"
root=$(cd "$(dirname "$0")/../.." && pwd)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "mypy>=1.10"
mypy=("$VENV/bin/python" -m mypy --no-incremental)

echo "mypy: package source"
(cd "$root" && "${mypy[@]}" --config-file pyproject.toml)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/usage.py" <<'EOF'
"""Typed use of the public API, checked against the installed package."""
from typing import Dict, List

import numpy as np

import blockprop
from blockprop import Dense, Sequential, kernels
from blockprop.nn import ReLU
from blockprop.optim import Adam
from blockprop.training import History


def train(X: np.ndarray, y: np.ndarray) -> Sequential:
    model = Sequential(Dense(X.shape[1], 16, "relu", seed=0), ReLU(), Dense(16, 3))
    history: History = model.fit(X, y, epochs=2, batch_size=32, optimizer=Adam(1e-3), verbose=0)
    losses: List[float] = history.history["loss"]
    scores: Dict[str, float] = model.evaluate(X, y)
    assert losses and scores
    return model


X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
model = train(X, (X[:, 0] > 0).astype(np.int64))
probabilities: np.ndarray = model.predict_proba(X)
threads: int = blockprop.get_num_threads()
isa: str = blockprop.isa()
y: np.ndarray = kernels.dense_forward(X, model.layers[0].parameters()["W"].data)
state: Dict[str, np.ndarray] = model.state_dict()
EOF
cat >"$tmp/wrong.py" <<'EOF'
import blockprop
from blockprop import Sequential

blockprop.set_num_threads("four")
threads: str = blockprop.get_num_threads()
Sequential().fit(epochs="many")
EOF

echo "mypy: typed usage against the installed package"
(cd "$tmp" && "${mypy[@]}" --strict usage.py)

echo "mypy: a wrong program is rejected"
if (cd "$tmp" && "${mypy[@]}" wrong.py >"$tmp/wrong.out" 2>&1); then
  echo "mypy accepted wrong.py: the installed package's types are not being used"; exit 1
fi
for expected in 'wrong.py:4: error: Argument 1 to "set_num_threads" has incompatible type "str"' \
                'wrong.py:5: error: Incompatible types in assignment' \
                'wrong.py:6: error: Missing positional arguments "X", "y" in call to "fit"'; do
  grep -qF "$expected" "$tmp/wrong.out" || { cat "$tmp/wrong.out"; echo "expected: $expected"; exit 1; }
done
echo "mypy: ok"
