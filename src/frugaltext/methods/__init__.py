"""Methods that ``compare`` trains side by side, behind one interface (:class:`Method`); the torch methods
share :class:`frugaltext.methods.torch_method.TorchMethod` (not imported here: it loads torch)."""

from frugaltext.methods.base import (
    BUILTIN_METHOD_MODULES,
    METHOD_ALIASES,
    Method,
    available_methods,
    get_method_class,
    load_model,
    register,
    resolve_method_name,
)

__all__ = [
    "Method", "available_methods", "get_method_class", "load_model", "register", "BUILTIN_METHOD_MODULES",
    "METHOD_ALIASES", "resolve_method_name",
]
