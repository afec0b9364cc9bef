"""Free-text PII detection measured on a labelled corpus (tests/pii/corpus.py): recall per kind, and not
one look-alike altered. ``python -m tests.pii.test_corpus`` prints the table."""

from __future__ import annotations

import re
from urllib.parse import quote

from medallion.pii.scrub import scrub_text
from tests.pii.corpus import labelled

KINDS = ("email", "phone", "ipv4", "ipv6")
_MARKS = {"email": "<email>", "phone": "<phone>", "ipv4": ".0/24", "ipv6": "::/48"}


def _leaks(text: str, kind: str, value: str) -> bool:
    """Whether ``text`` still holds ``value`` (as written, lower-cased, URL-encoded, or digits only)."""
    forms = {value, value.lower(), quote(value, safe=".-_~"), quote(value, safe=".-_~").lower()}
    if any(form in text or form in text.lower() for form in forms):
        return True
    digits = re.sub(r"[^0-9]", "", value)
    return kind == "phone" and digits in re.sub(r"[^0-9]", "", text)


def measure() -> tuple[dict[str, dict[str, float]], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Per kind: strings, caught, missed, false alarms (look-alikes changed to that kind's mark),
    precision, recall; then the altered look-alikes and the missed PII."""
    table = {k: {"strings": 0.0, "caught": 0.0, "false": 0.0} for k in KINDS}
    altered, missed = [], []
    for text, kind, value in labelled():
        out = scrub_text(text) or ""
        if kind is None:
            if out != text:
                altered.append((text, out))
                for k, mark in _MARKS.items():
                    table[k]["false"] += out.count(mark) > text.count(mark)
            continue
        table[kind]["strings"] += 1
        if _leaks(out, kind, value):
            missed.append((kind, text, out))
        else:
            table[kind]["caught"] += 1
    for row in table.values():
        row["recall"] = row["caught"] / row["strings"]
        row["precision"] = row["caught"] / ((row["caught"] + row["false"]) or 1)
    return table, altered, missed


def test_recall_per_kind_and_no_look_alike_altered() -> None:
    table, altered, missed = measure()
    assert sum(1 for _, k, _ in labelled() if k is None) >= 100
    assert altered == []
    for kind in KINDS:
        assert table[kind]["strings"] >= 30, kind
        assert table[kind]["recall"] >= 0.99, (kind, table[kind], [m for m in missed if m[0] == kind])


def test_the_issue_examples() -> None:
    assert scrub_text("/users/john.doe%40gmail.com/settings") == "/users/<email>/settings"
    assert scrub_text("josé@example.com") == "<email>" and scrub_text("müller@firma.de") == "<email>"
    assert scrub_text("call 555.123.4567") == "call <phone>"
    assert scrub_text("host192.168.1.10") == "host192.168.1.0/24"
    assert scrub_text("at 12:34:56") == "at 12:34:56"
    assert scrub_text("ip=192.168.001.010") == "ip=192.168.1.0/24"
    assert scrub_text("ip 2001:db8:1234:5678::9 x") == "ip 2001:db8:1234::/48 x"


if __name__ == "__main__":
    rows, changed, not_caught = measure()
    print(f"{'kind':<8}{'strings':>9}{'caught':>8}{'false':>7}{'precision':>11}{'recall':>8}")
    for name, r in rows.items():
        print(
            f"{name:<8}{r['strings']:>9.0f}{r['caught']:>8.0f}{r['false']:>7.0f}"
            f"{r['precision']:>11.3f}{r['recall']:>8.3f}"
        )
    looks = sum(1 for _, k, _ in labelled() if k is None)
    print(f"look-alikes: {looks}, altered: {len(changed)}")
    for item in [*changed, *not_caught]:
        print("  ", item)
