"""``medallion features online|historical``: look features up, or build a training set, through the stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from medallion.cli.app import STATE, app, console

features_app = typer.Typer(
    name="features",
    help="Read features: online (latest values) or historical (a point-in-time training set).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(features_app)


def _entities(pairs: list[str]) -> dict[str, list[str]]:
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.core.errors import UsageError

    entities: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise UsageError(f"--entity {pair!r} is not join_key=value (e.g. --entity user_id=u_000042).")
        entities.setdefault(key.strip(), []).append(value.strip())
    counts = {len(v) for v in entities.values()}
    if len(counts) != 1:
        raise UsageError(
            "Give each join key the same number of times: entity rows are built position by position."
        )
    return entities


@features_app.command("online")
def online(
    entity: Annotated[
        list[str], typer.Option("--entity", help="join_key=value; repeat for more keys or rows.")
    ],
    service: Annotated[
        str | None, typer.Option("--service", help="A feature service (e.g. ranking).")
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", help="A view:feature reference; repeat for several.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: {name: [value per entity row]}.")
    ] = False,
) -> None:
    """Print the online features of one or more entities (default: every view keyed by the given keys).

    \b
    Examples:
      medallion features online --entity user_id=u_000042
      medallion features online --entity user_id=u_000042 --entity item_id=i_000007 --service ranking --json
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import orjson

    from medallion.core.errors import UsageError
    from medallion.serving.reader import read_online

    if service is not None and feature:
        raise UsageError("--service and --feature exclude each other: pass one.")
    entities = _entities(entity)
    columns = read_online(STATE.config(), entities, feature or None, service=service)
    if as_json:
        typer.echo(orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY).decode())
        return
    _print_columns(columns, list(entities))


def _print_columns(columns: dict[str, list[Any]], keys: list[str]) -> None:
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.table import Table

    rows = len(next(iter(columns.values()), []))
    table = Table(title_justify="left", show_lines=False)
    table.add_column("feature")
    for i in range(rows):
        table.add_column(", ".join(str(columns[k][i]) for k in keys))
    for name, values in columns.items():
        if name in keys:
            continue
        table.add_row(name, *("—" if v is None else _short(v) for v in values))
    console().print(table)


def _short(value: Any) -> str:
    if isinstance(value, list):
        head = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value[:4])
        return f"[{head}{', …' if len(value) > 4 else ''}] ({len(value)})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@features_app.command("historical")
def historical(
    entities: Annotated[
        Path,
        typer.Option(
            "--entities",
            exists=True,
            dir_okay=False,
            help="CSV or Parquet: the join keys, event_timestamp (UTC if naive) and any label columns.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the training set (Parquet).")],
    service: Annotated[
        str | None, typer.Option("--service", help="A feature service (e.g. ranking).")
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", help="A view:feature reference; repeat for several.")
    ] = None,
) -> None:
    """Build a point-in-time correct training set through Feast: every entity row gets the features of
    each entity's newest Gold row at or before its event_timestamp (null past the TTL).

    \b
    Example:
      medallion features historical --entities labels.parquet --out train.parquet --service ranking
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import pandas as pd

    from medallion.cli.app import summary_table
    from medallion.core.errors import UsageError
    from medallion.serving import historical_features

    if service is not None and feature:
        raise UsageError("--service and --feature exclude each other: pass one.")
    suffix = entities.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(entities)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(entities)
    else:
        raise UsageError(f"--entities {entities}: give a .csv or .parquet file.")
    result = historical_features(STATE.config(), frame, feature or None, service=service)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out, index=False)
    added = [c for c in result.columns if c not in frame.columns]
    summary_table(
        "training set",
        [{"rows": len(result), "features": len(added), "out": str(out)}],
    )


@features_app.command("schema")
def schema(
    name: Annotated[
        str | None, typer.Argument(help="A feature family (e.g. user_features); default: every family.")
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Every registered version, oldest first, with what changed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the schemas as JSON.")] = False,
) -> None:
    """Show the feature schema registry: each family's current schema version (with NAME: its features),
    or with --history every version and what changed. Read from the lake, no Spark.

    \b
    Examples:
      medallion features schema
      medallion features schema user_features
      medallion features schema user_features --history
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from dataclasses import asdict

    import orjson

    from medallion.cli.app import summary_table
    from medallion.core.errors import UsageError
    from medallion.features import FAMILIES, family
    from medallion.governance import registry

    cfg = STATE.config()
    if name is not None:
        try:
            family(name)
        except KeyError as exc:
            raise UsageError(f"{exc.args[0]}.") from None
    names = [name] if name else [f.name for f in FAMILIES]
    versions = {
        n: (registry.history(cfg, n) if history else [v for v in [registry.latest(cfg, n)] if v])
        for n in names
    }
    if as_json:
        typer.echo(orjson.dumps({n: [asdict(v) for v in vs] for n, vs in versions.items()}).decode())
        return
    rows = [
        {
            "family": v.family,
            "version": v.version,
            "features": len(v.features),
            "breaking": "BREAKING" if v.breaking else "",
            "change": registry.Change.from_dict(v.change).text(),
            "code": v.code_version,
            "created": v.created_at,
        }
        for vs in versions.values()
        for v in vs
    ]
    unregistered = [n for n, vs in versions.items() if not vs]
    summary_table("feature schemas" + (" (history)" if history else ""), rows)
    if name and not history and versions[name]:
        current = versions[name][-1]
        summary_table(
            f"{name} v{current.version} (entity {current.entity}, key {current.join_key})",
            [
                {"feature": f.name, "type": f.dtype, "spark": f.spark_type, "description": f.description}
                for f in current.features
            ],
        )
    if unregistered:
        console().print(
            f"not registered yet (no Gold run since the registry began): {', '.join(unregistered)}"
        )
