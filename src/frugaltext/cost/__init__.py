"""Measured costs: wall time, energy and CO2, FLOPs, parameter counts.

Energy and CO2 come from codecarbon and from the TopicBERT paper's equation 1 (:mod:`.energy`), FLOPs
and parameters from :mod:`.flops`, and :class:`.meter.CostMeter` collects them for one method run.
"""
