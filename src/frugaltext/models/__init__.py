"""frugaltext.models."""
