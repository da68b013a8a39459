"""The C++ training loop (blockprop._fastpath) against the Python one: same kernels, same order,
so the same weights to the bit."""
import os
import signal
import threading

import numpy as np
import pytest

from blockprop import _core, _fastpath, training
from blockprop import kernels as K
from blockprop import reference as ref
from blockprop.nn import ELU, GELU, Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Softmax, Softplus, Tanh
from blockprop.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from blockprop.optim import SGD, Adam


def make_data(loss, n=103, features=5, outputs=4, dtype="float32"):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, features)).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, outputs, n)
    elif loss == "bce":
        y = (rng.random((n, outputs)) > 0.5).astype(dtype)
    else:
        y = rng.standard_normal((n, outputs)).astype(dtype)
    return X, y


def make_model(layout, dtype, outputs=4, penalties=({}, {}, {})):
    """penalties: the l1/l2 keywords of the three Dense layers."""
    p0, p1, p2 = penalties
    if layout == "fused":
        layers = [Dense(5, 11, "relu", seed=0, dtype=dtype, **p0), Dense(11, 7, "tanh", seed=1, dtype=dtype, **p1),
                  Dense(7, outputs, seed=2, dtype=dtype, **p2)]
    else:  # activation layers after linear Dense layers, and a layer without bias
        layers = [Dense(5, 11, seed=0, dtype=dtype, **p0), ReLU(),
                  Dense(11, 7, seed=1, dtype=dtype, bias=False, **p1), Sigmoid(),
                  Dense(7, outputs, seed=2, dtype=dtype, **p2)]
    return Sequential(*layers)


def train(enabled, layout, dtype, loss, optimizer, shuffle, monkeypatch, epochs=3, batch_size=16,
          penalties=({}, {}, {})):
    monkeypatch.setattr(_fastpath, "enabled", enabled)
    X, y = make_data(loss, dtype=dtype)
    model = make_model(layout, dtype, penalties=penalties)
    hist = model.fit(X, y, epochs=epochs, batch_size=batch_size, loss=loss, optimizer=optimizer(),
                     shuffle=shuffle, seed=5, verbose=0)
    return model, hist


OPTIMIZERS = {
    "sgd": lambda: SGD(0.05),
    "sgd_momentum_wd": lambda: SGD(0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda: SGD(0.05, momentum=0.8, nesterov=True),
    "adam": lambda: Adam(0.01, weight_decay=1e-3),
    "adamw": lambda: Adam(0.01, weight_decay=1e-2, decoupled=True),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("layout", ["fused", "separate"])
def test_cpp_loop_gives_the_python_loops_weights_bit_for_bit(dtype, loss, opt, layout, monkeypatch):
    shuffle = opt != "sgd"  # one unshuffled run per layout/loss/dtype
    slow, h_slow = train(False, layout, dtype, loss, OPTIMIZERS[opt], shuffle, monkeypatch)
    fast, h_fast = train(True, layout, dtype, loss, OPTIMIZERS[opt], shuffle, monkeypatch)
    assert_same_training(slow, h_slow, fast, h_fast)


def assert_same_training(slow, h_slow, fast, h_fast):
    """Weights, history and optimizer state to the bit; fast went through the C++ loop."""
    assert _fastpath.plan(fast, fast.loss, fast.optimizer) is not None
    for name, p in slow.parameters().items():
        q = fast.parameters()[name]
        assert np.array_equal(p.data, q.data), f"{name}: max diff {np.abs(p.data - q.data).max()}"
    assert h_slow.history["loss"] == h_fast.history["loss"]
    assert h_slow.history.get("accuracy") == h_fast.history.get("accuracy")
    assert slow.progress.updates == fast.progress.updates == 3 * 7  # 103 rows in batches of 16
    s_slow, s_fast = slow.optimizer.state_dict()["state"], fast.optimizer.state_dict()["state"]
    assert s_slow.keys() == s_fast.keys()
    for name in s_slow:
        assert s_slow[name].keys() == s_fast[name].keys(), name
        for key, value in s_slow[name].items():
            assert np.array_equal(value, s_fast[name][key]), f"optimizer state {name}.{key}"


# Penalties on the first and last Dense layers, none on the middle one (which adds nothing).
PENALTIES = {
    "l1": ({"l1": 1e-3}, {}, {"l1": 2e-3}),
    "l2": ({"l2": 1e-2}, {}, {"l2": 5e-3}),
    "l1_l2": ({"l1": 1e-3, "l2": 1e-2}, {}, {"l1": 2e-3, "l2": 5e-3}),
}


@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss,layout", [("cross_entropy", "fused"), ("bce", "separate"), ("mse", "fused")])
def test_cpp_loop_with_weight_penalties_gives_the_python_loops_results_bit_for_bit(
        penalty, opt, loss, layout, dtype, isa, monkeypatch):
    runs = [train(enabled, layout, dtype.name, loss, OPTIMIZERS[opt], True, monkeypatch,
                  penalties=PENALTIES[penalty]) for enabled in (False, True)]
    (slow, h_slow), (fast, h_fast) = runs
    assert_same_training(slow, h_slow, fast, h_fast)
    # The penalty is in the loss: without it the history differs.
    _, h_plain = train(True, layout, dtype.name, loss, OPTIMIZERS[opt], True, monkeypatch)
    assert h_plain.history["loss"][0] < h_fast.history["loss"][0]


def test_plan_accepts_dense_layers_with_weight_penalties():
    for penalties in PENALTIES.values():
        model = make_model("separate", "float32", penalties=penalties)
        p = _fastpath.plan(model, CrossEntropyLoss(), Adam())
        assert p is not None and [i for i, _, _ in p.dense] == [0, 2, 4]


def test_plan_refuses_an_adam_whose_parameters_have_different_step_counts(monkeypatch):
    X, y = make_data("cross_entropy")
    model = make_model("fused", "float32")
    opt = Adam(0.01)
    monkeypatch.setattr(_fastpath, "enabled", False)
    model.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    monkeypatch.setattr(_fastpath, "enabled", True)
    assert _fastpath.plan(model, CrossEntropyLoss(), opt) is not None
    opt.state["2.b"]["step"] -= 1
    assert _fastpath.plan(model, CrossEntropyLoss(), opt) is None
    del opt.state["2.b"]  # a parameter never updated (count 0) beside updated ones
    assert _fastpath.plan(model, CrossEntropyLoss(), opt) is None


def test_python_and_cpp_paths_can_take_turns(monkeypatch):
    """Optimizer state made by one path is picked up by the other."""
    X, y = make_data("cross_entropy")
    a, b = make_model("fused", "float32"), make_model("fused", "float32")
    for model, order in ((a, (False, True, False)), (b, (True, True, True))):
        for i, enabled in enumerate(order):
            monkeypatch.setattr(_fastpath, "enabled", enabled)
            model.fit(X, y, epochs=1, batch_size=10, optimizer=Adam(0.01) if i == 0 else None, seed=2,
                      verbose=0)
    for name, p in a.parameters().items():
        assert np.array_equal(p.data, b.parameters()[name].data), name


def test_models_the_cpp_loop_cannot_run_use_the_python_loop():
    softmax_end = Sequential(Dense(5, 4, seed=0), Softmax())
    double_act = Sequential(Dense(5, 4, "relu", seed=0), Tanh())
    plain = Sequential(Dense(5, 4, seed=0), Tanh(), Dense(4, 3, seed=1))
    assert _fastpath.plan(softmax_end, CrossEntropyLoss(), SGD()) is None
    assert _fastpath.plan(double_act, MSELoss(), SGD()) is None
    assert _fastpath.plan(plain, BCEWithLogitsLoss(), Adam()) is not None

    class MyLoss(MSELoss):
        pass

    assert _fastpath.plan(plain, MyLoss(), SGD()) is None


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_on_the_cpp_path_stops_between_chunks_and_leaves_a_usable_model(tmp_path):
    X, y = make_data("cross_entropy", n=20000, features=64)
    model = Sequential(Dense(64, 256, "relu", seed=0), Dense(256, 4, seed=1))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y, epochs=1000, batch_size=8, optimizer=SGD(0.01), verbose=0)
    finally:
        timer.cancel()
    steps_per_epoch = 2500
    assert 0 < model.progress.updates < 1000 * steps_per_epoch
    # a whole number of chunks into the epoch (the last chunk of an epoch may be shorter): no
    # batch half done
    chunk = max(steps_per_epoch // training.Trainer.calls_per_epoch,
                -(-training.Trainer.min_rows_per_call // 8))
    assert chunk < steps_per_epoch
    assert (model.progress.updates % steps_per_epoch) % chunk == 0
    assert all(np.isfinite(p.data).all() for p in model.parameters().values())
    model.save(tmp_path / "m.npz")


@pytest.mark.parametrize("enabled", [True, False], ids=["cpp", "python"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_float64_data_trains_a_float32_model_as_if_converted_without_a_copy(enabled, loss, monkeypatch):
    """float64 X for a float32 model is rounded batch by batch (no float32 copy of the data set),
    on both paths: bit-identical weights and losses to fitting X.astype(float32)."""
    from blockprop import training
    monkeypatch.setattr(_fastpath, "enabled", enabled)
    X64, y = make_data(loss, dtype="float64")
    y = y.astype("float32") if loss == "mse" else y
    seen = []
    real_as_inputs = training.as_inputs

    def spy(*args, **kwargs):
        seen.append(real_as_inputs(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(training, "as_inputs", spy)
    runs = []
    for X in (X64, X64.astype("float32")):
        model = make_model("fused", "float32")
        hist = model.fit(X, y, epochs=2, batch_size=16, loss=loss, optimizer=SGD(0.05, momentum=0.9),
                         seed=3, verbose=0)
        runs.append((model, hist))
    (wide, h_wide), (narrow, h_narrow) = runs
    for name, p in narrow.parameters().items():
        q = wide.parameters()[name].data
        assert q.dtype == np.float32
        assert np.array_equal(p.data, q), f"{name}: max diff {np.abs(p.data - q).max()}"
    assert h_wide.history["loss"] == h_narrow.history["loss"]
    assert np.shares_memory(seen[0], X64), "fit copied the float64 data set"


def test_float64_data_beyond_float32_range_is_refused_as_after_conversion():
    """A float64 value that becomes inf in float32 is refused like one that is inf already; the
    largest float64 that still rounds to float32's max is accepted."""
    model = make_model("fused", "float32")
    X, y = make_data("cross_entropy", dtype="float64")
    edge = float(np.nextafter(2.0 ** 128 - 2.0 ** 103, 0))
    assert np.isfinite(np.float32(edge))
    for bad in (2.0 ** 128 - 2.0 ** 103, -1e39, np.inf, np.nan):
        Xb = X.copy()
        Xb[7, 2] = bad
        with pytest.raises(ValueError, match=r"X contains NaN or infinity \(in 1 rows, the first at row 7\) "
                                             r"after conversion to float32"):
            model.fit(Xb, y, epochs=1, verbose=0)
    X[7, 2] = edge
    Xs = X.copy()
    Xs[:, :] = np.clip(Xs, -1, 1)
    Xs[7, 2] = edge * 1e-38  # in range: accepted
    model.fit(Xs, y, epochs=1, verbose=0)


def test_float64_data_is_not_copied_by_predict_evaluate_or_validation(monkeypatch):
    """predict, evaluate and fit's validation data round float64 X a batch at a time, as fit
    does: the same numbers as with X.astype(float32), and no float32 copy of the whole X."""
    from blockprop import training
    seen = []
    real_as_inputs = training.as_inputs

    def spy(*args, **kwargs):
        seen.append(real_as_inputs(*args, **kwargs))
        return seen[-1]

    X64, y = make_data("cross_entropy", dtype="float64")
    X32 = X64.astype("float32")
    model = make_model("fused", "float32")
    model.fit(X32, y, epochs=1, batch_size=16, loss="cross_entropy", verbose=0, seed=1)
    monkeypatch.setattr(training, "as_inputs", spy)
    assert np.array_equal(model.predict(X64, batch_size=10), model.predict(X32, batch_size=10))
    assert np.shares_memory(seen[0], X64), "predict copied float64 X"
    seen.clear()
    assert model.evaluate(X64, y, batch_size=10) == model.evaluate(X32, y, batch_size=10)
    assert np.shares_memory(seen[0], X64), "evaluate copied float64 X"
    h = [make_model("fused", "float32").fit(X32, y, epochs=1, batch_size=16, validation_data=(Xv, y),
                                             verbose=0, seed=1).history for Xv in (X64, X32)]
    assert h[0]["val_loss"] == h[1]["val_loss"] and h[0]["val_accuracy"] == h[1]["val_accuracy"]


# --- the typed contract of _core.mlp_train_batches ----------------------------------------------

def _contract(dtype=np.float32, n=8, momentum=0.9):
    """A one-layer problem 3 → 2 with SGD + momentum: (layers, loss, settings, x, y, order, lrs)."""
    W, b = np.ones((2, 3), dtype), np.zeros(2, dtype)
    layer = _core.MlpLayer(W, b, _core.Activation.relu, l1=0.0, l2=0.01,
                           state_W=(np.zeros_like(W),), state_b=(np.zeros_like(b),))
    x, y = np.ones((n, 3), dtype), np.zeros((n, 2), dtype)
    return [layer], _core.LossKind.mse, _core.SgdSettings(momentum=momentum), x, y, np.arange(n), 4, np.full(2, 0.1)


def test_contract_classes_have_keyword_constructors_and_readable_reprs():
    W = np.zeros((2, 3), np.float32)
    layer = _core.MlpLayer(W=W, b=None, activation=_core.Activation.tanh, l1=0.5, l2=0.25,
                           state_W=(W, W))
    assert layer.W is W and layer.b is None and layer.activation == _core.Activation.tanh
    assert (layer.l1, layer.l2, len(layer.state_W), layer.state_b) == (0.5, 0.25, 2, ())
    assert repr(layer) == ("MlpLayer(W=float32(2, 3), b=None, activation=Activation.tanh, l1=0.5, "
                           "l2=0.25, state_W=(float32(2, 3), float32(2, 3)), state_b=())")
    assert repr(_core.SgdSettings(momentum=0.9, nesterov=True)) == \
        "SgdSettings(momentum=0.9, nesterov=True, weight_decay=0.0)"
    adam = _core.AdamSettings(beta1=0.8, decoupled=True, weight_decay=0.01, step=7)
    assert (adam.beta1, adam.beta2, adam.eps, adam.step) == (0.8, 0.999, 1e-8, 7)
    assert repr(adam) == ("AdamSettings(beta1=0.8, beta2=0.999, eps=1e-08, weight_decay=0.01, "
                          "decoupled=True, step=7)")
    assert [k.name for k in (_core.LossKind.mse, _core.LossKind.cross_entropy, _core.LossKind.bce)] == \
        ["mse", "cross_entropy", "bce"]
    with pytest.raises(TypeError):
        _core.SgdSettings(0.9)  # keywords only: no silent mix-up of momentum and weight decay


def test_contract_runs_and_trains():
    args = _contract()
    W = args[0][0].W.copy()
    loss_sum, correct, seen = _core.mlp_train_batches(*args)
    assert seen == 8 and correct == 0 and loss_sum > 0
    assert not np.array_equal(W, args[0][0].W)


def test_loss_sum_goes_on_from_the_given_one_batch_by_batch():
    """loss_sum=s adds each batch's loss × rows to s in turn: two calls that pass the first one's
    sum on give the bits of one call over both (an epoch's sum does not depend on its cut)."""
    rng = np.random.default_rng(3)
    one, two = _contract(n=40), _contract(n=40)
    for args in (one, two):
        args[3][:] = rng.normal(size=args[3].shape).astype(args[3].dtype)
    two[3][:] = one[3]
    lrs = np.full(10, 0.01)
    whole = _core.mlp_train_batches(*one[:6], 4, lrs, loss_sum=0.125)
    first = _core.mlp_train_batches(*two[:5], np.arange(12), 4, lrs[:3], loss_sum=0.125)
    second = _core.mlp_train_batches(*two[:5], np.arange(12, 40), 4, lrs[3:], loss_sum=first[0])
    assert whole[0] == second[0] and whole[2] == first[2] + second[2] == 40
    assert np.array_equal(one[0][0].W, two[0][0].W)


@pytest.mark.parametrize("make,exc,match", [
    (lambda W: _core.MlpLayer(W, None, "relu"), TypeError, "activation must be a blockprop._core.Activation"),
    (lambda W: _core.MlpLayer(W.tolist()), TypeError, "W must be a NumPy array"),
    (lambda W: _core.MlpLayer(W, [0.0, 0.0]), TypeError, "b must be a NumPy array or None"),
    (lambda W: _core.MlpLayer(W, l1="0.1"), TypeError, "l1 must be a number"),
    (lambda W: _core.MlpLayer(W, l2=-1.0), ValueError, "l2 must lie in"),
    (lambda W: _core.MlpLayer(W, l1=float("nan")), ValueError, "l1 must lie in"),
    (lambda W: _core.MlpLayer(W, state_W=W), TypeError, "state_W must be a tuple of arrays"),
    (lambda W: _core.MlpLayer(W, state_W=(W, W, W)), ValueError, "state_W holds at most 2"),
    (lambda W: _core.MlpLayer(W, state_b=(None,)), TypeError, "state_b must hold arrays"),
    (lambda W: _core.SgdSettings(momentum="0.9"), TypeError, "momentum must be a number"),
    (lambda W: _core.SgdSettings(momentum=1.0), ValueError, r"momentum must lie in \[0.0, 1.0\)"),
    (lambda W: _core.SgdSettings(nesterov=1), TypeError, "nesterov must be a bool"),
    (lambda W: _core.SgdSettings(nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda W: _core.SgdSettings(weight_decay=True), TypeError, "weight_decay must be a number"),
    (lambda W: _core.AdamSettings(beta2=1.0), ValueError, "beta2 must lie in"),
    (lambda W: _core.AdamSettings(eps=0.0), ValueError, "eps must be > 0"),
    (lambda W: _core.AdamSettings(decoupled="yes"), TypeError, "decoupled must be a bool"),
    (lambda W: _core.AdamSettings(step=1.0), TypeError, "step must be an int"),
    (lambda W: _core.AdamSettings(step=0), ValueError, "step must be >= 1"),
])
def test_contract_classes_refuse_bad_arguments_by_name(make, exc, match):
    with pytest.raises(exc, match=match):
        make(np.zeros((2, 3), np.float32))


def _with(args, **changes):
    names = ["layers", "loss", "optimizer", "x", "y", "order", "batch_size", "lrs"]
    d = dict(zip(names, args))
    d.update(changes)
    return [d[k] for k in names]


def _layer(W, b=None, **kw):
    return _core.MlpLayer(W, b, _core.Activation.linear, **kw)


@pytest.mark.parametrize("change,exc,match", [
    (dict(layers=[(np.ones((2, 3), np.float32), None, "relu", None, None, None, None)]), TypeError,
     r"layers\[0\] must be a blockprop._core.MlpLayer, got tuple"),
    (dict(layers=None), TypeError, "layers must be a list of blockprop._core.MlpLayer"),
    (dict(layers=[]), ValueError, "no layers"),
    (dict(loss="mse"), TypeError, "loss must be a blockprop._core.LossKind, got str"),
    (dict(optimizer={"momentum": 0.9}), TypeError, "optimizer must be a blockprop._core.SgdSettings or AdamSettings"),
    (dict(optimizer=_core.SgdSettings(momentum=0.0)), ValueError,
     r"layers\[0\].state_W must hold 0 arrays for this optimizer"),
    (dict(optimizer=_core.AdamSettings()), ValueError, r"layers\[0\].state_W must hold 2 arrays"),
    (dict(layers=[_layer(np.ones((2, 3), np.float32), np.zeros(2, np.float32), state_W=(np.zeros((2, 3), np.float32),))]),
     ValueError, r"layers\[0\].state_b must hold 1 arrays"),
    (dict(layers=[_layer(np.ones((2, 3), np.float32), state_W=(np.zeros((2, 3), np.float64),))]),
     TypeError, r"layers\[0\].state_W\[0\] must be an array of the model's dtype \(float32\)"),
    (dict(layers=[_layer(np.ones((2, 3), np.float32), state_W=(np.zeros((3, 2), np.float32),))]),
     ValueError, r"layers\[0\].state_W\[0\]"),
    (dict(layers=[_layer(np.ones((2, 3), np.float32), np.zeros(2, np.float64), state_W=(np.zeros((2, 3), np.float32),),
                         state_b=(np.zeros(2, np.float32),))]), TypeError, r"layers\[0\].b must be an array of the model's dtype"),
    (dict(layers=[_layer(np.ones((3, 2), np.float32).T, state_W=(np.zeros((2, 3), np.float32),))]),
     ValueError, r"layers\[0\].W must be C-contiguous"),
    (dict(layers=[_layer(np.ones((2, 3), np.float32), state_W=(np.zeros((2, 3), np.float32),)),
                  _layer(np.ones((2, 3), np.float32), state_W=(np.zeros((2, 3), np.float32),))]),
     ValueError, r"layer widths do not chain: layers\[1\].W has 3 inputs"),
    (dict(x=np.ones((8, 4), np.float32)), ValueError, "x"),
    (dict(y=np.zeros((8, 2), np.float64)), TypeError, "y"),
    (dict(lrs=np.full(3, 0.1)), ValueError, "one learning rate per batch"),
    (dict(order=np.array([0, 8])), ValueError, "out of range"),
])
def test_mlp_train_batches_refuses_a_broken_contract_by_name(change, exc, match):
    args = _with(_contract(), **change)
    with pytest.raises(exc, match=match):
        _core.mlp_train_batches(*args)


def test_mlp_train_batches_refuses_read_only_weights_and_gelu():
    layers, *rest = _contract()
    W = np.ones((2, 3), np.float32)
    W.flags.writeable = False
    ro = _core.MlpLayer(W, None, state_W=(np.zeros_like(W),))
    with pytest.raises(ValueError, match=r"layers\[0\].W must be C-contiguous, aligned and writeable"):
        _core.mlp_train_batches([ro], *rest)
    W = np.ones((2, 3), np.float32)
    gelu = _core.MlpLayer(W, None, _core.Activation.gelu, state_W=(np.zeros_like(W),))
    with pytest.raises(ValueError, match="GELU"):
        _core.mlp_train_batches([gelu], *rest)


# --- accuracy: one rule (kernels.count_correct) ---------------------------------------------------

def _argmax_cases(dtype):
    nan, inf = np.nan, np.inf
    z = np.array([[1, 3, 3, 0],        # tie: the first maximum (1)
                  [2, 2, 2, 2],        # all equal: 0
                  [1, nan, 5, nan],    # NaN: the first NaN (1), as np.argmax
                  [nan, 1, 2, 3],      # NaN first: 0
                  [nan, nan, nan, nan],
                  [-inf, -inf, -inf, -inf],
                  [0, inf, inf, 1],    # infinities tie: the first (1)
                  [-1, -2, -0.5, -3]], dtype)
    return z


def test_count_correct_follows_numpys_argmax_with_ties_and_nan(dtype, isa):
    z = _argmax_cases(dtype)
    first = np.argmax(z, axis=1)
    assert first.tolist() == [1, 0, 1, 0, 0, 0, 1, 2]
    n = len(z)
    for labels in (first, (first + 1) % 4, np.zeros(n, np.int64), np.array([1, 3, 2, 0, 1, 0, 2, 2])):
        want = int(np.count_nonzero(np.argmax(z, axis=1) == labels))
        assert K.count_correct(z, labels) == ref.count_correct(z, labels) == want
    assert K.count_correct(z, first) == n
    assert K.count_correct(z, first.astype(np.int32)) == n  # any integer labels


def test_count_correct_binary_every_output_on_its_side(dtype, isa, rng):
    z = rng.standard_normal((200, 3)).astype(dtype)
    z[::7, 1] = 0.0                # 0 predicts 0
    z[::11, 2] = np.nan            # NaN > 0 is False: predicts 0
    t = (rng.random((200, 3)) > 0.5).astype(dtype)
    t[::13, 0] = 0.5               # 0.5 is not > 0.5: target 0
    for targets in (t, 1 - t, (z > 0).astype(dtype), np.clip(t, 0.25, 0.75)):
        assert K.count_correct(z, targets) == ref.count_correct(z, targets)
    assert K.count_correct(z, (z > 0).astype(dtype)) == 200
    assert K.count_correct(z[:, :1], t[:, :1]) == ref.count_correct(z[:, :1], t[:, :1])


def test_count_correct_matches_the_reference_on_random_logits_and_views(dtype, rng):
    z = rng.integers(-2, 3, (300, 5)).astype(dtype)  # small integers: many ties
    labels = rng.integers(0, 5, 300)
    assert K.count_correct(z, labels) == ref.count_correct(z, labels)
    assert K.count_correct(z[::2, 1:], labels[::2] % 4) == ref.count_correct(z[::2, 1:], labels[::2] % 4)
    assert K.count_correct(z[:0], labels[:0]) == 0


def test_count_correct_with_weights_sums_the_weights_of_the_rows_right(dtype, isa, rng):
    """The weighted accuracy's numerator: the same rows as count_correct, each counting its weight."""
    z = rng.integers(-2, 3, (300, 5)).astype(dtype)  # small integers: many ties
    z[::17, 2] = np.nan
    labels = rng.integers(0, 5, 300)
    t = (rng.random((300, 5)) > 0.5).astype(dtype)
    w = rng.random(300) * 3
    w[::5] = 0
    for targets in (labels, t, (z > 0).astype(dtype)):
        right = ref.count_correct(z, targets)
        got, want = K.count_correct(z, targets, w), ref.count_correct(z, targets, w)
        assert isinstance(got, float) and got == pytest.approx(want, rel=1e-12), (dtype, isa, got, want)
        assert K.count_correct(z, targets, np.ones(300)) == right  # weights of 1: the count
        assert K.count_correct(z, targets, np.zeros(300)) == 0.0
    assert K.count_correct(z[::2, 1:], labels[::2] % 4, w[::2]) == pytest.approx(
        ref.count_correct(z[::2, 1:], labels[::2] % 4, w[::2]), rel=1e-12)
    for bad, match in ((np.ones(299), "weights"), (-np.ones(300), ">= 0"), (np.full(300, np.nan), "finite")):
        with pytest.raises(ValueError, match=match):
            K.count_correct(z, labels, bad)


def test_count_correct_refuses_bad_input_by_name():
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="logits must be 2-D"):
        K.count_correct(z[0], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        K.count_correct(z, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"targets\[1\] = 3 is out of range"):
        K.count_correct(z, np.array([0, 3, 0, 0]))
    with pytest.raises(TypeError, match="targets"):
        K.count_correct(z, np.zeros((4, 3), np.float64))
    with pytest.raises(ValueError, match="targets"):
        K.count_correct(z, np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="logits"):
        K.count_correct(np.zeros((4, 3), np.int64), np.zeros(4, np.int64))


def test_loss_classes_count_correct_rows_with_the_kernel(monkeypatch, dtype):
    z = _argmax_cases(dtype)
    labels = np.array([1, 0, 1, 0, 0, 0, 1, 2])
    calls = []
    real = K.count_correct

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(K, "count_correct", spy)
    assert CrossEntropyLoss().correct(z, labels) == 8
    t = (z > 0).astype(dtype)
    assert BCEWithLogitsLoss().correct(z, t) == 8
    assert len(calls) == 2


# --- Dropout in the C++ loop -----------------------------------------------------------------------

def _dropout_model(layout, dtype):
    from blockprop.nn import Dropout
    if layout == "fused":  # after a fused activation, and after the output layer
        return Sequential(Dense(5, 11, "relu", seed=0, dtype=dtype), Dropout(0.3, seed=7),
                          Dense(11, 7, "tanh", seed=1, dtype=dtype, l2=1e-3), Dense(7, 4, seed=2, dtype=dtype),
                          Dropout(0.1, seed=8))
    # after an activation layer, after a linear Dense without bias, and a p = 0 Dropout
    return Sequential(Dense(5, 11, seed=0, dtype=dtype), Sigmoid(), Dropout(0.5, seed=9),
                      Dense(11, 7, seed=1, dtype=dtype, bias=False), Dropout(0.25, seed=10),
                      Dense(7, 4, seed=2, dtype=dtype), Dropout(0.0, seed=11))


@pytest.mark.parametrize("opt", ["sgd_momentum_wd", "adam"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("layout", ["fused", "separate"])
def test_cpp_loop_with_dropout_gives_the_python_loops_results_bit_for_bit(layout, loss, opt, dtype, isa,
                                                                           monkeypatch):
    from blockprop.nn import Dropout
    X, y = make_data(loss, dtype=dtype.name)
    runs = []
    for enabled in (False, True):
        monkeypatch.setattr(_fastpath, "enabled", enabled)
        model = _dropout_model(layout, dtype.name)
        assert (_fastpath.plan(model, CrossEntropyLoss(), SGD()) is not None) == enabled
        # two fits: the second goes on from the first's update count (the masks' step)
        model.fit(X, y, epochs=1, batch_size=16, loss=loss, optimizer=OPTIMIZERS[opt](), seed=5, verbose=0)
        hist = model.fit(X, y, epochs=2, batch_size=16, seed=5, verbose=0)
        runs.append((model, hist))
    (slow, h_slow), (fast, h_fast) = runs
    assert_same_training(slow, h_slow, fast, h_fast)
    steps = [(l.step, l._active) for l in slow.layers if isinstance(l, Dropout)]
    assert steps == [(l.step, l._active) for l in fast.layers if isinstance(l, Dropout)]
    assert steps[0] == (3 * 7 - 1, True)
    # without the Dropout layers the C++ loop gives other weights: the masks are really applied
    monkeypatch.setattr(_fastpath, "enabled", True)
    plain = Sequential(*[l for l in _dropout_model(layout, dtype.name).layers if not isinstance(l, Dropout)])
    plain.fit(X, y, epochs=1, batch_size=16, loss=loss, optimizer=OPTIMIZERS[opt](), seed=5, verbose=0)
    assert not np.array_equal(plain.layers[-1].W, fast.layers[-2].W)


def test_plan_takes_dropout_only_after_a_dense_layer_or_its_activation():
    from blockprop.nn import Dropout
    loss, opt = CrossEntropyLoss(), SGD()
    assert _fastpath.plan(Sequential(Dense(3, 4), ReLU(), Dropout(0.5), Dense(4, 2)), loss, opt) is not None
    assert _fastpath.plan(Sequential(Dense(3, 4), Dropout(0.5), ReLU(), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), Dropout(0.5), Dropout(0.5), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dropout(0.5), Dense(3, 4), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4, "relu"), Tanh(), Dropout(0.5), Dense(4, 2)), loss, opt) is None


def test_mlp_layer_dropout_arguments_are_checked():
    W = np.zeros((2, 3), np.float32)
    layer = _core.MlpLayer(W, dropout=0.25, dropout_seed=2 ** 64 - 1)
    assert (layer.dropout, layer.dropout_seed) == (0.25, 2 ** 64 - 1)
    assert repr(layer).endswith("dropout=0.25, dropout_seed=18446744073709551615)")
    with pytest.raises(ValueError, match=r"dropout must lie in \[0.0, 1.0\)"):
        _core.MlpLayer(W, dropout=1.0)
    with pytest.raises(ValueError, match="dropout_seed must lie in"):
        _core.MlpLayer(W, dropout_seed=-1)
    with pytest.raises(TypeError, match="dropout_seed must be an int"):
        _core.MlpLayer(W, dropout_seed=1.5)
    args = _contract()
    with pytest.raises(ValueError, match="dropout_step must lie in"):
        _core.mlp_train_batches(*args, dropout_step=-1)


# --- activations with parameters (LeakyReLU, ELU, softplus): fused or as layers ---------------
@pytest.mark.parametrize("layout", ["dense", "layer"])
@pytest.mark.parametrize("act,layer", [("leaky_relu", LeakyReLU), ("elu", ELU), ("softplus", Softplus)])
def test_cpp_training_loop_is_bit_identical(layout, act, layer, monkeypatch):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((50, 5)).astype(np.float32), rng.integers(0, 3, 50)
    results = []
    for enabled in (False, True):
        monkeypatch.setattr(_fastpath, "enabled", enabled)
        layers = ([Dense(5, 8, act, seed=0)] if layout == "dense" else [Dense(5, 8, seed=0), layer()])
        model = Sequential(*layers, Dense(8, 3, seed=1))
        assert (_fastpath.plan(model, model.loss or CrossEntropyLoss(), SGD(0.1)) is not None) == enabled
        h = model.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(0.1, momentum=0.9), seed=0, verbose=0)
        results.append((model.state_dict(), h.history["loss"]))
    (slow, slow_loss), (fast, fast_loss) = results
    assert slow_loss == fast_loss
    for name in slow:
        np.testing.assert_array_equal(slow[name], fast[name], err_msg=name)


def test_cpp_loop_refuses_gelu_and_custom_parameters():
    loss, opt = CrossEntropyLoss(), SGD(0.1)
    assert _fastpath.plan(Sequential(Dense(3, 4, "gelu"), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), GELU(), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), LeakyReLU(0.2), Dense(4, 2)), loss, opt) is None
    assert _fastpath.plan(Sequential(Dense(3, 4), ELU(0.5), Dense(4, 2)), loss, opt) is None
    w = np.zeros((2, 3), np.float32)
    layers = [_core.MlpLayer(w, None, _core.Activation.gelu)]
    with pytest.raises(ValueError, match="GELU"):
        _core.mlp_train_batches(layers, _core.LossKind.mse, _core.SgdSettings(),
                                   np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32),
                                   np.arange(4), 2, np.full(2, 0.1))
