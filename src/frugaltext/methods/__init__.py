"""Methods that ``compare`` trains side by side, behind one interface (:class:`Method`)."""

from frugaltext.methods.base import (
    Method,
    available_methods,
    get_method_class,
    load_model,
    register,
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
]
