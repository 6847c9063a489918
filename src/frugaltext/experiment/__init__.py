"""``frugaltext compare`` as a library: configure a comparison, run it, store its results.

- :mod:`frugaltext.experiment.config`: :class:`CompareConfig`, presets, YAML files, ``--key value``
  overrides, :func:`resolve_config`, method variants, :func:`config_hash`;
- :mod:`frugaltext.experiment.results`: ``results.json`` and ``results.csv``: :func:`read_results`,
  :func:`add_result_row` (under :func:`results_lock`), :class:`CompareResult`;
- :mod:`frugaltext.experiment.provenance`: machine, package versions and torch threads recorded in every row;
- :mod:`frugaltext.experiment.runner`: :func:`run_compare` (the loop over methods and seeds), the progress
  bar and the run logs.

The modules import each other in that order only (``config`` and ``results`` import no other module of this
package; ``runner`` imports all three), and this file imports none of them, so that importing
:mod:`frugaltext.experiment.results` (as :mod:`frugaltext.reports` does) does not load the runner. The usual
entry points are also exported lazily by the package: ``frugaltext.compare(...)`` (the API function,
:func:`frugaltext.api.compare`), ``frugaltext.CompareConfig``, ``frugaltext.resolve_config``,
``frugaltext.run_compare``.
"""
