"""Synthetic user events for Kafka: the generator, malformed-record classes, lookup tables and producer."""

from __future__ import annotations

from medallion.produce.bad import BAD_CLASSES
from medallion.produce.lookups import build_world, write_lookups
from medallion.produce.producer import ProduceFailed, ProduceResult, produce_events

__all__ = ["BAD_CLASSES", "ProduceFailed", "ProduceResult", "build_world", "produce_events", "write_lookups"]
