"""Secrets never printed: `medallion config`, the log at every level (tracebacks included), the CLI's
error line and the ledger mask them, by one rule (`medallion.core.masking`), each kind tried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from medallion.core.ledger import Ledger, RunRecord, new_run_id
from medallion.core.masking import MASK, mask_secrets, mask_text
from tests.conftest import REPO

CONFIG_DIR = REPO / "config"
SECRETS = {
    "kafka": {"client": {"sasl.password": "kafka-s3cret", "sasl.jaas.config": 'password="jaas-s3cret";'}},
    "spark": {"conf": {"fs.s3a.secret.key": "s3-s3cret", "fs.s3a.session.token": "tok-s3cret"}},
    "serving": {"redis_url": "redis://:redis-s3cret@127.0.0.1:6390/0"},
}
CLEAR = ("kafka-s3cret", "jaas-s3cret", "s3-s3cret", "tok-s3cret", "redis-s3cret")
TEXTS = {
    "redis://:redis-s3cret@h:6379/0": f"redis://:{MASK}@h:6379/0",
    "postgresql://app:pw-s3cret@db/x": f"postgresql://app:{MASK}@db/x",
    "GET https://h/cb?code=1&access_token=tok-s3cret&x=2": f"GET https://h/cb?code=1&access_token={MASK}&x=2",
    'PlainLoginModule required username="u" password="p-s3cret";': (
        f'PlainLoginModule required username="u" password="{MASK}";'
    ),
    "sasl.password=kafka-s3cret, bootstrap=h:9092": f"sasl.password={MASK}, bootstrap=h:9092",
    '{"fs.s3a.secret.key": "s3-s3cret"}': f'{{"fs.s3a.secret.key": "{MASK}"}}',
    "dbPassword: pw ok": f"dbPassword: {MASK} ok",
}
KEPT = ("bypass=1", "at 12:34:56", "https://user@host/p", "key=value", "hmac_key_env: MEDALLION_PII_KEY")


def test_each_kind_of_secret_is_masked_and_nothing_else() -> None:
    for text, masked in TEXTS.items():
        assert mask_text(text) == masked
    for text in KEPT:
        assert mask_text(text) == text
    masked_config = mask_secrets(
        {**SECRETS, "pii": {"hmac_key_env": "MEDALLION_PII_KEY"}, "n": [1, None, True]}
    )
    assert masked_config == {
        "kafka": {"client": {"sasl.password": MASK, "sasl.jaas.config": MASK}},
        "spark": {"conf": {"fs.s3a.secret.key": MASK, "fs.s3a.session.token": MASK}},
        "serving": {"redis_url": f"redis://:{MASK}@127.0.0.1:6390/0"},
        "pii": {"hmac_key_env": "MEDALLION_PII_KEY"},
        "n": [1, None, True],
    }


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION", "LOGURU"))}
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, env={**base, **env}, timeout=120)


def test_medallion_config_prints_no_secret(tmp_path: Path) -> None:
    base = yaml.safe_load((CONFIG_DIR / "base.yaml").read_text())
    for section, values in SECRETS.items():
        base.setdefault(section, {}).update(values)
    for name in os.listdir(CONFIG_DIR):
        if name.endswith(".yaml") and name != "base.yaml":
            (tmp_path / name).write_text((CONFIG_DIR / name).read_text())
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    out = _run([sys.executable, "-m", "medallion.cli.main", "--config-dir", str(tmp_path), "config"])
    assert out.returncode == 0, out.stderr
    for clear in CLEAR:
        assert clear not in out.stdout + out.stderr, clear
    assert f"redis://:{MASK}@127.0.0.1:6390/0" in out.stdout and "sasl.password" in out.stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_the_log_masks_secrets_at_every_level_and_in_tracebacks(as_json: bool) -> None:
    probe = (
        "from medallion.cli.logs import configure_logging\n"
        f"configure_logging('DEBUG', as_json={as_json})\n"
        "from loguru import logger\n"
        "logger.debug('connecting to redis://:redis-s3cret@h:6379/0')\n"
        "logger.info('client {c}', c={'sasl.password': 'kafka-s3cret'})\n"
        "logger.warning('spark conf fs.s3a.secret.key=s3-s3cret')\n"
        "token = 'tok-s3cret'\n"
        "try:\n"
        "    raise ConnectionError('redis://:' + token + '@h refused')\n"
        "except ConnectionError:\n"
        "    logger.exception('failed')\n"
        "from medallion.cli.app import _print_error\n"
        "_print_error('cannot reach redis://u:jaas-s3cret@h:1/0')\n"
    )
    out = _run([sys.executable, "-c", probe])
    assert out.returncode == 0, out.stderr
    for clear in CLEAR:
        assert clear not in out.stderr, (clear, out.stderr)
    assert out.stderr.count(MASK) >= 5 and "ConnectionError" in out.stderr


def test_the_ledger_records_no_secret(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path))
    record = RunRecord(
        stage="materialize",
        run_id=new_run_id(),
        started_at="2026-12-06T00:00:00+00:00",
        inputs={"online_store": SECRETS["serving"]["redis_url"], "options": SECRETS["kafka"]["client"]},
        outcome="failed",
        error="Redis at redis://:redis-s3cret@127.0.0.1:6390/0 refused; fs.s3a.secret.key=s3-s3cret",
    )
    text = Path(ledger.write(record)).read_text()
    for clear in CLEAR:
        assert clear not in text, clear
    assert json.loads(text)["inputs"]["options"]["sasl.password"] == MASK


def test_the_ledger_masks_a_run_s_options_and_command_line_by_the_same_rule() -> None:
    from medallion.core.stages import mask_argv, mask_options

    argv = ["/venv/bin/medallion", "ingest", "--pii-key", "k-s3cret", "--redis-url=redis://:pw-s3cret@h:1/0"]
    assert mask_argv(argv) == f"medallion ingest --pii-key {MASK} --redis-url=redis://:{MASK}@h:1/0"
    options = {"sasl.password": "s3cret", "url": "redis://u:pw@h/0", "count": 3, "until": None}
    assert mask_options(options) == {
        "sasl.password": MASK,
        "url": f"redis://u:{MASK}@h/0",
        "count": "3",
        "until": None,
    }
