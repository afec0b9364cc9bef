"""One narrow fix to Feast's file (dask) offline store, for Gold files written by Spark.

Spark writes timestamps as INT96 unless told otherwise (``spark.sql.parquet.outputTimestampType``; our
own session says TIMESTAMP_MICROS, but Gold written before that, or by another writer, may not). pyarrow
reads INT96 as a *naive* ``timestamp[ns]``. Feast 0.67's dask store then makes the timestamps UTC row by
row (``_normalize_timestamp``: ``Series.apply`` with a UTC ``meta``), and every dask partition that comes
out empty or all-null keeps the naive dtype. The point-in-time filter that follows compares naive with
aware values and raises ``TypeError: Invalid comparison between dtype=datetime64[ns] and
DatetimeArray`` — or not, depending on how dask happened to split the merge: a flaky training-set build.

The fix is at the point where Feast reads the source: naive timestamp columns are localised to UTC once,
vectorised, for the whole frame. That is what the values mean (Spark's INT96 stores UTC instants), and a
frame that is already UTC with pytz's UTC makes Feast skip its row-wise path altogether. A directory
that mixes INT96 and TIMESTAMP_MICROS files is read with the first file's type and cast by pyarrow,
which keeps the instants, so it is covered too.

``tests/serving/test_historical.py`` pins the behaviour on INT96, micros and mixed Gold, so a Feast
upgrade that moves ``_read_datasource`` fails there instead of in a training job.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

_MARK = "_medallion_utc_timestamps"


def install() -> None:
    """Idempotently wrap Feast's dask ``_read_datasource`` so naive timestamps come back as UTC."""
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast.infra.offline_stores import dask as dask_store

    original = getattr(dask_store, "_read_datasource", None)
    if original is None:
        logger.warning(
            "feast.infra.offline_stores.dask._read_datasource is gone: INT96 Gold is not normalised"
        )
        return
    if getattr(original, _MARK, False):
        return

    def read_datasource_utc(*args: Any, **kwargs: Any) -> Any:
        return utc_timestamps(original(*args, **kwargs))

    setattr(read_datasource_utc, _MARK, True)
    read_datasource_utc.__wrapped__ = original  # type: ignore[attr-defined]
    dask_store._read_datasource = read_datasource_utc


def utc_timestamps(frame: Any) -> Any:
    """Localise every naive datetime column of a (dask or pandas) frame to UTC; aware ones become pytz UTC."""
    # lazy: pandas (about a second) only where a DataFrame is built
    import pandas as pd
    import pytz

    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_datetime64_dtype(dtype):  # naive only: aware columns are DatetimeTZDtype
            frame[name] = frame[name].dt.tz_localize(pytz.UTC)
        elif isinstance(dtype, pd.DatetimeTZDtype) and dtype.tz != pytz.UTC:
            # Feast compares the dtype's tz with pytz.UTC and falls back to its row-wise path otherwise.
            frame[name] = frame[name].dt.tz_convert(pytz.UTC)
    return frame
