"""The core every stage shares, importing no stage, engine or operation.

Two layers (``tests/test_layers.py``): the base (``errors``, ``times``, ``retry``, ``lakefs``, ``config``,
``contract``, ``catalog``, ``masking``: declarations and plain utilities) and, above it, what a stage run
needs (``lake``, ``ledger``, ``locks``, ``stages``, ``dlq``, ``metrics``, ``status_model``,
``rejections``). See docs/architecture.md, "Layers".
"""
