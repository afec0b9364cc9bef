"""The lake over time: compaction, retention and erasure, over the catalogue's datasets.

Delta Lake and Iceberg publish no release for Spark 4.3, so the lake stays Parquet and these
operations are ours. They act on `medallion.core.catalog` datasets through one module of file operations
(`medallion.maintenance.files`: list a dataset's data files, read only some columns of one, replace
one whole or not at all), so that a table format could take them over later:

- `forget` (≈ DELETE + purge): one person out of every layer, DLQ, lookup and the online store, and
  their keyed hashes into the erasure register (`medallion.maintenance.register`) that Bronze consults;
- `retention` (≈ VACUUM / expire): whole date partitions past their age;
- `compact` (≈ OPTIMIZE): small files merged, the same rows, swapped in atomically and journaled
  (`medallion.maintenance.swap`).

No pyspark here: these run without starting Spark (pyarrow reads and writes the files).
"""
