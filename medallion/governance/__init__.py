"""Feature governance: the schema registry, feature-quality checks and drift, run by every Gold run.

- `registry`: a versioned schema per feature table in the lake (``features.schemas``); a Gold run compares
  what it is about to write with the latest version and fails on a breaking change unless allowed.
- `quality`: declared thresholds per family (``thresholds/<family>.yaml``), checked on the computed
  features before they are written; results are the rule engine's `QualityReport`.
- `drift`: PSI and KS per feature and feature date against a reference window (``quality.drift``).

`registry` and the reading side of `drift` import no pyspark: `status` and the CLI use them.
"""
