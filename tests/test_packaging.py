"""What `pip install medallion` puts on a user's machine: the wheel built from this repository, installed
into a folder of its own, run from an empty folder with no project around it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the folder it is installed in), built from a copy of the sources (no build/ left here)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(REPO / "medallion", source / "medallion", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-w", str(work), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = work.glob("medallion-*.whl")
    site = work / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=300)
    return wheel, site


def test_the_wheel_carries_every_file_the_package_reads(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "medallion"
    data = {
        p.relative_to(REPO).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert data, "the package has data files (schema, rules, defaults, log4j2)"
    assert sorted(data - shipped) == []


def _run(site: Path, cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_installed_medallion_runs_from_an_empty_folder_on_its_packaged_defaults(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, site = installed
    where = _run(site, tmp_path, "-c", "import medallion; print(medallion.__file__)")
    assert where.stdout.strip().startswith(str(site)), where.stderr

    shown = _run(site, tmp_path, "-m", "medallion.cli.main", "config")
    assert shown.returncode == 0, shown.stderr
    assert "root: ./lake" in shown.stdout and "online_store: sqlite" in shown.stdout
    assert "embedded: true" in shown.stdout  # the local overlay was found too

    # The contract and the rules come from the package as well.
    event = {"event_id": "e1", "event_type": "search"}
    checked = _run(
        site, tmp_path, "-m", "medallion.cli.main", "contract", "check", "-", stdin=json.dumps(event)
    )
    assert checked.returncode == 1 and "invalid" in checked.stdout, checked.stdout + checked.stderr
    rules = _run(
        site,
        tmp_path,
        "-c",
        "from medallion.core.catalog import SILVER; from medallion.quality.rules import rules_for; "
        "print(len(rules_for(SILVER, None).rules))",
    )
    assert rules.returncode == 0 and int(rules.stdout) > 5, rules.stderr

    # The defaults, copied to edit; an edited file is never overwritten by a second copy.
    init = _run(site, tmp_path, "-m", "medallion.cli.main", "config", "--init", "config")
    assert init.returncode == 0, init.stderr
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == [
        "base.yaml",
        "docker.yaml",
        "local.yaml",
        "prod.yaml",
    ]
    base = tmp_path / "config" / "base.yaml"
    base.write_text(base.read_text().replace("root: ./lake", "root: ./my-lake"))
    again = _run(site, tmp_path, "-m", "medallion.cli.main", "config", "--init", "config")
    assert "exists, left as it is" in again.stdout
    mine = _run(site, tmp_path, "-m", "medallion.cli.main", "config")
    assert "root: ./my-lake" in mine.stdout, mine.stderr  # ./config is found before the packaged defaults


def test_a_named_config_folder_without_base_yaml_is_an_error_naming_the_fix(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, site = installed
    out = _run(site, tmp_path, "-m", "medallion.cli.main", "--config-dir", "nowhere", "config")
    assert out.returncode == 2
    assert "No config found" in out.stderr and "--init" in out.stderr
