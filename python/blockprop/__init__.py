"""blockprop: fast dense neural networks on the CPU, with a cache-blocked C++ core."""
from ._runtime import (
    _apply_isa_env,
    get_num_threads,
    isa,
    set_isa,
    set_num_threads,
    supported_isas,
)

_apply_isa_env()

from . import kernels, reference  # noqa: E402
from .kernels import *  # noqa: E402,F401,F403

from . import nn, optim, schedules  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
from .nn import Dense, Sequential  # noqa: E402
from .serialization import load  # noqa: E402

__version__ = "0.1.0"
