"""matgrad: closed-form matrix-calculus gradients, fast and exact, on any backend.

See the documentation site (docs/) for usage, backend selection and the plugin
contract; README.md for the two commands that run and test it.
"""

from ._api import (
    bilinear_grad,
    charpoly,
    charpoly_deriv,
    det_grad,
    det_hessian,
    det_hvp,
    frobenius_grad,
    frobenius_hvp,
    logdet_grad,
    logdet_hvp,
)
from ._backend import (
    Backend,
    BackendInfo,
    CompileWarning,
    Defer,
    ModuleBackend,
    OrchestrationRequest,
    WarmupTask,
    array_module_of,
)
from ._config import Config, config
from ._frontend import BackendResultError
from ._hooks import hookimpl, hookspec
from ._registry import list_backends, refresh_backends
from ._select import get_backend, load_backend, set_backend, use_backend
from ._version import __version__

__all__ = [
    "Backend",
    "BackendInfo",
    "BackendResultError",
    "CompileWarning",
    "Config",
    "Defer",
    "ModuleBackend",
    "OrchestrationRequest",
    "WarmupTask",
    "__version__",
    "array_module_of",
    "bilinear_grad",
    "charpoly",
    "charpoly_deriv",
    "config",
    "det_grad",
    "det_hessian",
    "det_hvp",
    "frobenius_grad",
    "frobenius_hvp",
    "get_backend",
    "hookimpl",
    "hookspec",
    "list_backends",
    "load_backend",
    "logdet_grad",
    "logdet_hvp",
    "refresh_backends",
    "set_backend",
    "use_backend",
]
