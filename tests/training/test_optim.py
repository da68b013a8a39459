"""Optimizers against blockprop.reference, their state and their argument checks."""
import numpy as np
import pytest

from blockprop import reference as R
from blockprop.nn import Parameter
from blockprop.optim import SGD, Adam, AdamW

TOL = {np.float32: 1e-6, np.float64: 1e-14}


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {"0.W": Parameter(rng.normal(size=(4, 3)).astype(dtype)),
            "0.b": Parameter(rng.normal(size=4).astype(dtype))}


def _grads(params, rng):
    for p in params.values():
        p.grad = rng.normal(size=p.data.shape).astype(p.data.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                    dict(momentum=0.5, weight_decay=0.01), dict(weight_decay=0.1)])
def test_sgd_matches_reference(dtype, kwargs):
    params, rng = _params(dtype), np.random.default_rng(1)
    ref = {k: p.data.copy() for k, p in params.items()}
    vel = {k: np.zeros_like(v) for k, v in ref.items()}
    opt = SGD(lr=0.05, **kwargs)
    for _ in range(4):
        _grads(params, rng)
        opt.step(params)
        for k, p in params.items():
            R.sgd_step(ref[k], p.grad, vel[k], lr=0.05, **kwargs)
            np.testing.assert_allclose(p.data, ref[k], rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [dict(), dict(weight_decay=0.05), dict(weight_decay=0.05, decoupled=True),
                                    dict(betas=(0.8, 0.99), eps=1e-6)])
def test_adam_matches_reference(dtype, kwargs):
    params, rng = _params(dtype), np.random.default_rng(2)
    ref = {k: p.data.copy() for k, p in params.items()}
    m = {k: np.zeros_like(v) for k, v in ref.items()}
    v = {k: np.zeros_like(x) for k, x in ref.items()}
    opt = Adam(lr=0.01, **kwargs)
    b1, b2 = kwargs.get("betas", (0.9, 0.999))
    for t in range(1, 5):
        _grads(params, rng)
        opt.step(params)
        for k, p in params.items():
            R.adam_step(ref[k], p.grad, m[k], v[k], t, lr=0.01, beta1=b1, beta2=b2,
                        eps=kwargs.get("eps", 1e-8), weight_decay=kwargs.get("weight_decay", 0.0),
                        decoupled_weight_decay=kwargs.get("decoupled", False))
            np.testing.assert_allclose(p.data, ref[k], rtol=0, atol=TOL[dtype] * 10)
    assert opt.state["0.W"]["step"] == 4


def test_adamw_is_decoupled_adam():
    opt = AdamW(lr=0.1, weight_decay=0.2)
    assert isinstance(opt, Adam) and opt.decoupled and opt.weight_decay == 0.2


def test_step_lr_override():
    params, rng = _params(np.float64), np.random.default_rng(3)
    _grads(params, rng)
    before = params["0.W"].data.copy()
    SGD(lr=1.0).step(params, lr=0.5)
    np.testing.assert_allclose(params["0.W"].data, before - 0.5 * params["0.W"].grad)


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9, nesterov=True), lambda: Adam(0.01)])
def test_state_dict_resumes_exactly(make):
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=(4, 3)) for _ in range(6)]
    a, b = _params(np.float64), _params(np.float64)
    opt_a, opt_b = make(), make()
    for g in grads[:3]:
        for params, opt in ((a, opt_a), (b, opt_b)):
            for p in params.values():
                p.grad = g[: p.data.shape[0]] if p.data.ndim == 2 else g[:, 0]
            opt.step(params)
    buffers = opt_a.state_dict()["state"]["0.W"]
    key = "velocity" if "velocity" in buffers else "m"
    buffers[key][...] = 123.0  # state_dict() hands out copies
    assert not (opt_a.state["0.W"][key] == 123.0).any()
    resumed = make()
    resumed.load_state_dict(opt_b.state_dict())
    for g in grads[3:]:
        for params, opt in ((a, opt_a), (b, resumed)):
            for p in params.values():
                p.grad = g[: p.data.shape[0]] if p.data.ndim == 2 else g[:, 0]
            opt.step(params)
    for k in a:
        assert np.array_equal(a[k].data, b[k].data)
    with pytest.raises(ValueError, match="cannot load"):
        SGD().load_state_dict(Adam().state_dict())


@pytest.mark.parametrize("make", [lambda: SGD(lr=-0.1), lambda: SGD(lr=float("nan")), lambda: Adam(lr=-1),
                                  lambda: SGD(momentum=1.5), lambda: SGD(nesterov=True),
                                  lambda: SGD(weight_decay=-1), lambda: Adam(betas=(1.0, 0.9)),
                                  lambda: Adam(betas=(0.9,)), lambda: Adam(eps=-1e-8)])
def test_bad_hyperparameters(make):
    with pytest.raises(ValueError):
        make()
    with pytest.raises(TypeError):
        SGD(lr="fast")
    with pytest.raises(ValueError):
        SGD().step(_params(np.float32), lr=float("nan"))
