"""frugaltext: energy-efficient document classification, with every method's cost measured."""

__version__ = "0.1.0"
