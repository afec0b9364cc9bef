from __future__ import annotations

from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console, summary_table


@app.command()
def forget(
    user_id: Annotated[str | None, typer.Option("--user-id", help="The person's user id.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="The person's email address.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="The person's phone number.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list where the person is.")] = False,
    recompute: Annotated[
        bool,
        typer.Option("--recompute", help="Then rebuild the Gold dates whose aggregates counted the person."),
    ] = False,
) -> None:
    """Erase one person everywhere, for good (the right to erasure): Bronze, both DLQs, Silver, Gold's
    user rows, the users lookup and the online store; Bronze drops their records from then on.

    \b
    Examples:
      medallion forget --user-id u_000042 --dry-run
      medallion forget --email someone@example.com --recompute
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.maintenance import jobs

    cfg = STATE.config()
    result = jobs.forget(cfg, user_id=user_id, email=email, phone=phone, dry_run=dry_run)
    print_ = console().print
    print_(f"request {result.request[:16]}… ({'dry run' if dry_run else 'erasure'})")
    if not result.found:
        print_("nothing found: the lake holds no row of this person" + ("" if dry_run else " (any more)"))
        return
    column = "rows found" if dry_run else "rows removed"
    summary_table("forget", [{"dataset": f.dataset, "files": f.files, column: f.rows} for f in result.found])
    if dry_run or not result.dates:
        return
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import datetime as dt

    from medallion.operations import pipeline

    only = pipeline.gold_dates_to_rebuild([dt.date.fromisoformat(d) for d in result.dates])
    if not recompute:
        print_(
            f"Gold's aggregates (item and statistical features) of {len(only)} feature date(s) still count "
            f"the person until rebuilt: `medallion gold --start-date {only[0]} --end-date {only[-1]}` "
            "(or `forget --recompute` next time)."
        )
        return
    rebuilt = pipeline.gold(cfg, only[0], only[-1], only=only)
    print_(
        f"gold rebuilt for {len(rebuilt.dates)} feature date(s); run `medallion materialize` to serve them"
    )
