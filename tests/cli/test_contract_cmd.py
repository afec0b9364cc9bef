"""``medallion contract check``: a producer team's offline check, with Bronze's own validator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.bronze.test_user_contract import EVENT, their_contract
from tests.conftest import CONFIG_DIR, REPO


def medallion(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    return subprocess.run(
        [sys.executable, "-m", "medallion.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )


VALID = {
    "schema_version": 1,
    "event_id": "01JDQ2ZK3M8X0000000000000A",
    "event_type": "click",
    "event_time": "2025-11-25T11:59:00.000Z",
    "user_id": "5f0c6d3e-8a4b-4c1e-9f2a-0b1c2d3e4f50",
    "session_id": "web-42",
    "item_id": "SKU-000123",
}


def test_each_record_is_valid_or_names_its_failed_rules(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    lines = [json.dumps(VALID), "", json.dumps({**VALID, "item_id": None}), "{oops", json.dumps(VALID)]
    samples.write_text("\n".join(lines) + "\n")
    done = medallion("--config-dir", str(CONFIG_DIR), "contract", "check", str(samples))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "line 1: valid",
        "line 3: invalid: type:item_id",
        "line 4: invalid: payload:malformed_json",
        "line 5: valid",
        "4 records: 2 valid, 2 invalid",
    ]

    # Against the client's own contract, from stdin: their events pass, the packaged ones do not.
    contract = tmp_path / "theirs.json"
    contract.write_text(json.dumps(their_contract()))
    stdin = json.dumps(EVENT) + "\n"
    args = ("--config-dir", str(CONFIG_DIR), "contract", "check", "--contract", str(contract), "-")
    ok = medallion(*args, stdin=stdin)
    assert (ok.returncode, ok.stdout.splitlines()[0]) == (0, "line 1: valid"), ok.stderr
    packaged = medallion("--config-dir", str(CONFIG_DIR), "contract", "check", "-", stdin=stdin)
    assert packaged.returncode == 1 and "required:schema_version" in packaged.stdout


def test_a_contract_bronze_cannot_compile_is_a_config_error(tmp_path: Path) -> None:
    schema = their_contract()
    schema["properties"]["tenant"]["uniqueItems"] = True
    contract = tmp_path / "theirs.json"
    contract.write_text(json.dumps(schema))
    args = ("--config-dir", str(CONFIG_DIR), "contract", "check", "--contract", str(contract), "-")
    done = medallion(*args, stdin="{}\n")
    assert done.returncode == 2 and "uniqueitems" in done.stderr.lower() and "tenant" in done.stderr
