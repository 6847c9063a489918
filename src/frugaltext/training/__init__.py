"""frugaltext.training."""
