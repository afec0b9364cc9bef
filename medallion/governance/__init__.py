"""Feature governance: the schema registry, feature quality and drift, run by every Gold run.

- `registry`: a versioned schema per feature table in the lake (``features.schemas``); a Gold run compares
  what it is about to write with the latest version and fails on a breaking change unless allowed.
- `gold`: the three as the Gold job runs them; feature quality is the one rule engine's
  (`medallion.quality`), with rules derived from the feature declarations, checked before a table is
  written.
- `drift`: PSI and KS per feature and feature date against a reference window (``quality.drift``).

`registry` and the reading side of `drift` import no pyspark: `status` and the CLI use them.
"""
