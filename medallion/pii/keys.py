"""Where the HMAC key for PII comes from: the environment, never a committed file.

Local mode may generate a development key once and keep it under the lake (``_state/pii_dev.key``) so that
hashes stay joinable across runs; every other environment refuses to start without the variable.
"""

from __future__ import annotations

import os
import secrets

from medallion.core import catalog, lakefs
from medallion.core.config import Config
from medallion.core.errors import ConfigError


def pii_key(cfg: Config) -> bytes:
    value = os.environ.get(cfg.pii.hmac_key_env)
    if value:
        if len(value) < 16:
            raise ConfigError(
                f"{cfg.pii.hmac_key_env} is too short ({len(value)} characters): use at least 16 random "
                f"characters, e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        return value.encode()
    if not (cfg.pii.allow_dev_key and cfg.env == "local"):
        raise ConfigError(
            f"No PII hashing key: set the environment variable {cfg.pii.hmac_key_env} to a secret of at least "
            f"16 characters (the same one for every run, or hashes stop joining). Only the local environment "
            f"may generate a development key (pii.allow_dev_key)."
        )
    path = catalog.PII_DEV_KEY.path(cfg)
    if not lakefs.exists(path):
        lakefs.write_text(path, secrets.token_hex(32))
    return lakefs.read_text(path).strip().encode()
