from __future__ import annotations

from pathlib import Path

import pytest

from medallion.core.config import load_config, reference_markdown
from medallion.core.errors import ConfigError
from tests.conftest import CONFIG_DIR


def test_environment_overlay_and_variable_override() -> None:
    local = load_config("local", CONFIG_DIR, environ={})
    docker = load_config("docker", CONFIG_DIR, environ={"MEDALLION__KAFKA__PARTITIONS": "7"})
    assert local.kafka.embedded and not docker.kafka.embedded
    assert docker.serving.online_store == "redis"
    assert docker.kafka.partitions == 7
    assert local.kafka.partitions == 4


def test_unknown_key_names_file_key_and_fix(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("kafka:\n  bootstrap_server: x:1\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", tmp_path, environ={})
    message = str(err.value)
    assert str(tmp_path / "base.yaml") in message
    assert "kafka.bootstrap_server" in message and "unknown key" in message
    assert "MEDALLION__KAFKA__BOOTSTRAP_SERVER" in message


def test_wrong_type_from_overlay_names_the_overlay(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("kafka:\n  partitions: 4\n")
    (tmp_path / "docker.yaml").write_text("kafka:\n  partitions: many\n")
    with pytest.raises(
        ConfigError, match=r"docker\.yaml: kafka\.partitions: input should be a valid integer"
    ):
        load_config("docker", tmp_path, environ={})


def test_unset_variable_in_yaml_is_named(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("lake:\n  root: ${SURELY_UNSET_VAR_42}\n")
    with pytest.raises(ConfigError, match="SURELY_UNSET_VAR_42 is not set"):
        load_config("local", tmp_path, environ={})


def test_missing_config_dir_and_bad_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base.yaml does not exist"):
        load_config("local", tmp_path / "nope")
    with pytest.raises(ConfigError, match="Unknown environment"):
        load_config("staging", CONFIG_DIR)


def test_reference_lists_every_key_with_its_variable() -> None:
    text = reference_markdown()
    assert "`kafka.bootstrap_servers`" in text and "MEDALLION__KAFKA__BOOTSTRAP_SERVERS" in text
    assert "`serving.online_store`" in text


def test_readme_config_reference_is_generated_from_the_models() -> None:
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    start, end = "<!-- config-reference:start -->\n", "\n<!-- config-reference:end -->"
    section = readme[readme.index(start) + len(start) : readme.index(end)]
    assert section == reference_markdown().rstrip(), "regenerate with: medallion config --reference"


def test_variables_in_yaml_come_from_the_environment_given(tmp_path: Path) -> None:
    """`load_config(environ=...)` is the whole environment: ``${VAR}`` in a file expands from it too."""
    (tmp_path / "base.yaml").write_text("lake:\n  root: ${LAKE_HOME}/lake\nkafka:\n  topic: $TOPIC\n")
    cfg = load_config("local", tmp_path, environ={"LAKE_HOME": "s3a://b", "TOPIC": "clicks"})
    assert (cfg.lake.root, cfg.kafka.topic) == ("s3a://b/lake", "clicks")
    with pytest.raises(
        ConfigError, match=r"lake.root uses \$\{LAKE_HOME\}, but the environment variable LAKE_HOME"
    ):
        load_config("local", tmp_path, environ={"TOPIC": "clicks"})
