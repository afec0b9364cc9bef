"""Kafka for medallion: `source` (the Spark streaming source, imports pyspark) and `admin` (topics,
offsets, lag, checkpoint offsets; no Spark, so `medallion status` stays fast)."""
