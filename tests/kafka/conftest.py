"""The Kafka tests run against both brokers: the embedded Tansu and a real Apache Kafka (KRaft).

``kafka_broker`` (and so ``make_topic`` / ``kafka_topic``) is parametrized here; a test that only Apache
Kafka can pass (CreatePartitions, transactions, compaction, DeleteRecords) asks for ``apache_kafka``.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["tansu", "apache"])
def kafka_broker(request: pytest.FixtureRequest, kafka_broker: Any) -> Any:
    """The session's embedded broker, or the session's Apache Kafka: both have ``.bootstrap``."""
    if request.param == "tansu":
        return kafka_broker
    return request.getfixturevalue("apache_kafka")
