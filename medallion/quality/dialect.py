"""What only Spark can judge in a rule file, checked in the dialect the rules run in, before any data is
read: regular expressions compiled by the JVM, ``in_set`` values cast to their column's type. And how the
engine writes names and values into the SQL it generates (`ident`, `text`, `number`)."""

from __future__ import annotations

import re

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.core.errors import ConfigError
from medallion.quality.rules import Rule, RuleSet

_PLAIN = re.compile(r"[\w .,:;/+=@#-]*")


def ident(name: str) -> str:
    """A column name as a SQL identifier, whatever its characters."""
    return "`" + name.replace("`", "``") + "`"


def text(value: str) -> str:
    """A string as a SQL expression of exactly that string. Plain text is quoted as it is; any other (a
    pattern's backslashes, quotes, newlines) is written as its UTF-8 bytes, which no parser setting
    (``spark.sql.parser.escapedStringLiterals``) reads differently."""
    if _PLAIN.fullmatch(value):
        return f"'{value}'"
    return f"CAST(X'{value.encode().hex()}' AS STRING)"


def number(value: float) -> str:
    """A double as a SQL expression of exactly that double (its shortest text, read back by the JVM)."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def check_patterns(spark: SparkSession, ruleset: RuleSet) -> None:
    """Compile every ``pattern`` with the JVM's ``java.util.regex.Pattern`` (what Spark's `rlike` runs),
    on the driver through py4j, without a job: Java's ``\\p{XDigit}`` loads; Python's ``(?P<name>…)``,
    which Java does not know, is a ConfigError here rather than a failure in the middle of a run."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    for rule in ruleset.rules:
        if rule.pattern is None:
            continue
        try:
            jvm.java.util.regex.Pattern.compile(rule.pattern)
        except (Py4JJavaError, PySparkException) as exc:  # pyspark converts the Java exception
            message = str(exc).strip().splitlines()[0]
            raise ConfigError(
                f"Invalid rule file {ruleset.source}: rule {rule.name!r}: pattern {rule.pattern!r} is not a "
                f"Java regular expression, the dialect Spark's rlike runs ({message}). Write it in Java's "
                "syntax (named groups are (?<name>...), not (?P<name>...))."
            ) from None


def check_values(spark: SparkSession, ruleset: RuleSet, schema: T.StructType) -> None:
    """Every ``in_set`` value cast to its column's type, as the rule compares them; a value the type
    cannot hold (``maybe`` for a boolean, ``1.5`` for an integer) is a ConfigError. One query without a
    table (constants only), and only for columns that are not text."""
    probes: list[tuple[Rule, str, str, T.DataType]] = []
    for rule in ruleset.rules:
        if rule.type != "in_set":
            continue
        for name in rule.columns:
            kind = schema[name].dataType if name in schema.fieldNames() else T.StringType()
            if not isinstance(kind, T.StringType):
                probes += [(rule, name, v, kind) for v in rule.values]
    if not probes:
        return
    casts = [F.lit(v).try_cast(kind).isNull().alias(f"p{i}") for i, (_, _, v, kind) in enumerate(probes)]
    row = spark.range(1).select(*casts).first()
    assert row is not None
    for i, (rule, name, value, kind) in enumerate(probes):
        if row[f"p{i}"]:
            raise ConfigError(
                f"Invalid rule file {ruleset.source}: rule {rule.name!r}: value {value!r} is not a "
                f"{kind.simpleString()}, the type of column {name!r}. Give values of that type."
            )
