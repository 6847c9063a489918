"""frugaltext.cli."""
