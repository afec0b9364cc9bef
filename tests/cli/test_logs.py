"""What reaches stderr at each --log-level: our log always, the libraries' warnings only at debug."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

# Each warning or record as its library emits it; run in a fresh process, since the filters are global.
EMIT = """
import logging, warnings
from medallion.cli.logs import configure_logging
configure_logging({level!r}, as_json=False)
warnings.warn("old_api is deprecated", DeprecationWarning)
warnings.warn("keyword will change", FutureWarning)
warnings.warn_explicit("On demand feature view is an experimental feature", RuntimeWarning,
                       "feast/on_demand_feature_view.py", 1, module="feast.on_demand_feature_view")
warnings.warn_explicit("protobuf gencode is older", UserWarning, "google/protobuf/runtime_version.py", 1,
                       module="google.protobuf.runtime_version")
warnings.warn("a warning from elsewhere", UserWarning)
logging.getLogger("feast.infra.registry").warning("a Feast warning")
logging.getLogger("feast.repo_config").error("a Feast error")
from loguru import logger
logger.info("our progress")
import os
print(os.environ["MEDALLION_LOG_LEVEL"], os.environ["LOGURU_LEVEL"])
"""

LIBRARY_NOISE = (
    "old_api is deprecated",
    "keyword will change",
    "experimental feature",
    "protobuf gencode",
    "a Feast warning",
)


def emit(level: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION", "LOGURU", "PYTHONWARNINGS"))}
    return subprocess.run(
        [sys.executable, "-c", EMIT.format(level=level)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def test_default_level_keeps_library_notices_out_and_the_rest_in_our_format() -> None:
    out = emit("INFO")
    assert out.returncode == 0, out.stderr
    for noise in LIBRARY_NOISE:
        assert noise not in out.stderr
    lines = out.stderr.splitlines()
    assert any(line.endswith("INFO    our progress") for line in lines), out.stderr
    assert any("WARNING UserWarning: a warning from elsewhere" in line for line in lines), out.stderr
    assert any("ERROR   feast.repo_config: a Feast error" in line for line in lines), out.stderr
    assert out.stdout.split() == ["INFO", "INFO"]  # for the Spark sessions and Spark's Python workers


def test_debug_shows_every_library_warning() -> None:
    out = emit("DEBUG")
    assert out.returncode == 0, out.stderr
    for noise in LIBRARY_NOISE:
        assert noise in out.stderr
    assert out.stdout.split() == ["DEBUG", "DEBUG"]


def test_error_level_shows_errors_only() -> None:
    out = emit("ERROR")
    assert out.returncode == 0, out.stderr
    assert "our progress" not in out.stderr and "a warning from elsewhere" not in out.stderr
    assert "a Feast error" in out.stderr
