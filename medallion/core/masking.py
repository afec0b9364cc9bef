"""Secrets masked wherever medallion prints or records something: one rule, used by `medallion config`,
the log, the CLI's error line and the ledger.

The rule, by name and by shape:

- a member whose **name** says secret — ``password``, ``passwd``, ``pwd``, ``secret``, ``token``,
  ``credential``, ``api_key``/``apikey``, ``access_key``, ``private_key``, ``pii_key``, ``jaas`` (Kafka's
  ``sasl.password`` and ``sasl.jaas.config``, Spark's ``fs.s3a.secret.key`` and ``fs.s3a.access.key``,
  any ``*_token``) — has its whole value replaced by ``***``;
- in any text, a URL's **userinfo** password (``redis://:pass@host``, ``postgres://u:pass@h``) and a
  ``name=value`` or ``name: value`` pair whose name says secret (in a query string, a JAAS line, a
  library's error message) are masked the same way.

Masking keeps the shape (the user, the host, the key's name), so a printed config still says what is
set; only the secret goes.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_WORDS = (
    r"pass(?:word|wd)?|pwd|secret|token|credential|api[_.-]?key|access[_.-]?key|private[_.-]?key|jaas"
    r"|pii[_.-]?key"
)
_WORD_START = r"(?:^|(?<=[^A-Za-z0-9])|(?<=[a-z])(?=[A-Z]))"  # a name's start, a separator, or camelCase
SECRET_NAME_RE = re.compile(rf"{_WORD_START}(?i:{_SECRET_WORDS})")
"""A member name that says secret: one of the words at the start of a word of the name
(``sasl.password``, ``fs.s3a.secret.key``, ``redis_password``, ``apiToken``; not ``bypass``)."""
_USERINFO_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*):([^@/\s]+)@")
_PAIR_RE = re.compile(
    rf"""(?x)
    ((?<![\w.-])(?:[\w.-]*?{_WORD_START})?(?i:{_SECRET_WORDS})[\w.-]*"?'?\s*[=:]\s*)  # name, = or :
    ("[^"]*"|'[^']*'|[^\s&,;"'}})\]]+)                            # the value, quoted or up to a delimiter
    """
)


def is_secret_name(name: str) -> bool:
    return SECRET_NAME_RE.search(name) is not None


def mask_text(text: str) -> str:
    """``text`` with URL passwords and ``secret-name=value`` pairs masked."""
    if ":" not in text and "=" not in text:
        return text
    text = _USERINFO_RE.sub(rf"\1:{MASK}@", text)
    return _PAIR_RE.sub(_mask_pair, text)


def _mask_pair(m: re.Match[str]) -> str:
    value = m[2]
    quote = value[0] if value[:1] in ("'", '"') else ""
    if value.startswith(("{", "[")) or value == MASK or value.strip(quote) == MASK:
        return m[0]
    return f"{m[1]}{quote}{MASK}{quote}"


def mask_secrets(value: Any, name: str = "") -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, scalars) with secrets masked: members whose name
    says secret replaced whole (when set), every string's URL passwords and secret pairs masked."""
    if isinstance(value, dict):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, name) for v in value]
    if name and is_secret_name(name) and value not in (None, "") and not isinstance(value, bool):
        return MASK
    return mask_text(value) if isinstance(value, str) else value
