"""The `feast` CLI on feature_repo/ registers exactly what `medallion` registers, on the same stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from medallion import serving
from medallion.core.config import Config
from tests.serving.conftest import CONFIG_DIR

REPO = CONFIG_DIR.parent


@pytest.mark.integration
def test_feast_cli_apply_in_feature_repo_matches_medallion_apply(
    tmp_path: Path, serving_config: Callable[..., Config]
) -> None:
    """A copy of feature_repo/ in a fresh project whose lake has no Gold yet: `feast apply` works there,
    and medallion's own apply afterwards finds nothing to change (the registry file stays as it was)."""
    repo = tmp_path / "feature_repo"
    repo.mkdir()
    shutil.copy(REPO / "feature_repo" / "features.py", repo)
    cfg = serving_config(tmp_path / "lake")
    serving.write_feature_store_yaml(cfg, repo, base_dir=tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env |= {"MEDALLION_CONFIG_DIR": str(CONFIG_DIR), "MEDALLION__LAKE__ROOT": str(tmp_path / "lake")}
    feast = Path(sys.executable).with_name("feast")

    done = subprocess.run(
        [str(feast), "apply"], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Created feature view user_features" in done.stdout
    assert "Created feature service ranking" in done.stdout
    registry = tmp_path / "lake" / "_feast" / "registry.db"
    before = registry.read_bytes()
    assert "feature_view:item_embeddings" in serving.apply(cfg)
    assert registry.read_bytes() == before
