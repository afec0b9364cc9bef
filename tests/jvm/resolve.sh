#!/usr/bin/env bash
# Resolve the JVM engines the tests run (tests/jvm/pom.xml) into the local Maven repository (~/.m2,
# reused between runs) and copy their jars to tests/jvm/lib/<module>/ (out of git), where the fixtures
# (tests/fixtures/jvm.py) find them. Needs Maven and Java 17. Safe to re-run: copies only what changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v mvn >/dev/null 2>&1 || { echo "Error: mvn not found (Debian: apt-get install maven)." >&2; exit 2; }

# Spark's connector should match the installed pyspark; say so when it cannot (not every pyspark
# release has its connector published: tests/jvm/pom.xml says which one is pinned and why).
pom_spark="$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$here/pom.xml")"
py_spark="$(python -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || echo unknown)"
if [ "$pom_spark" != "$py_spark" ]; then
  echo "note: Spark's Kafka connector is pinned at $pom_spark; pyspark is $py_spark (see tests/jvm/pom.xml)." >&2
fi

mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies
for module in kafka spark-kafka s3a; do
  count="$(find "$here/lib/$module" -name '*.jar' | wc -l)"
  [ "$count" -gt 0 ] || { echo "Error: no jars in $here/lib/$module after resolving." >&2; exit 1; }
done
echo "JVM engines resolved into $here/lib/ (kafka, spark-kafka, s3a)."
