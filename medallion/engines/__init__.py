"""The engines the stages run on: the one Spark session factory (``spark``), Kafka's source and admin
helpers (``kafka``), and the embedded services a laptop run starts (``services``, ``embedded``)."""
