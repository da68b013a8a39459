"""blockprop: fast dense neural networks on the CPU, with a cache-blocked C++ core."""
# "name as name": an explicit re-export, so type checkers in strict mode see the public API.
from ._runtime import _apply_isa_env
from ._runtime import bf16_path as bf16_path
from ._runtime import get_num_threads as get_num_threads
from ._runtime import isa as isa
from ._runtime import set_bf16_path as set_bf16_path
from ._runtime import set_isa as set_isa
from ._runtime import set_num_threads as set_num_threads
from ._runtime import supported_bf16_paths as supported_bf16_paths
from ._runtime import supported_isas as supported_isas
from ._runtime import thread_limit as thread_limit

_apply_isa_env()

from . import kernels as kernels, reference as reference  # noqa: E402
from .kernels import *  # noqa: E402,F401,F403

from . import nn as nn, optim as optim, schedules as schedules  # noqa: E402
from .gradcheck import gradcheck as gradcheck  # noqa: E402
from .many import fit_many as fit_many  # noqa: E402
from .nn import Dense as Dense, Sequential as Sequential  # noqa: E402
from .nn.ensemble import load as load  # noqa: E402  (a Sequential or an Ensemble file)
from .export_c import export_c as export_c  # noqa: E402
from .serialization import save as save  # noqa: E402  (model.save(path) is the same)

__version__ = "0.1.0"
