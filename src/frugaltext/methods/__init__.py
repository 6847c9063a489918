"""Methods that ``compare`` trains side by side, behind one interface (:class:`Method`); the torch methods
share :class:`frugaltext.methods.torch_method.TorchMethod` (not imported here: it loads torch)."""

from frugaltext.methods.base import (
    METHOD_ALIASES,
    Method,
    available_methods,
    get_method_class,
    load_model,
    register,
    resolve_method_name,
)

#: Modules imported to fill the registry. Each module registers its classes with ``@register``.
BUILTIN_METHOD_MODULES = (
    "frugaltext.methods.tfidf",
    "frugaltext.methods.bert",
    "frugaltext.methods.topicbert",
    "frugaltext.methods.baselines",
    "frugaltext.methods.early_exit",
    "frugaltext.methods.distill",
)

__all__ = [
    "Method", "available_methods", "get_method_class", "load_model", "register", "BUILTIN_METHOD_MODULES",
    "METHOD_ALIASES", "resolve_method_name",
]
