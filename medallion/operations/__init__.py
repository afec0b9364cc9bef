"""What runs and watches the stages: each stage as a library call and ``medallion run`` (``pipeline``),
``status`` without Spark, its ``alerts``, and the HTML ``report``. The CLI (``medallion.cli``) sits on top."""
