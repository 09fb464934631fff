"""``dqueue repo submit|list|show``: deposits of dataset versions in the repository (Merritt)."""
from __future__ import annotations

import dataclasses
from typing import Any

import click

from ..cli.common import LIMIT, ROW_ID, AppContext, emit_json
from ..cli.main import cli
from ..stash import resources
from . import store as repo
from .states import REPO_STATES, RepoState
from .submit import Outcome, SubmitRefused, submit


def _row(r: repo.StateRow) -> dict[str, Any]:
    return {**dataclasses.asdict(r), "state": r.state.value if r.state else None}


def _line(r: repo.StateRow) -> str:
    return (f"{r.created_at:%Y-%m-%d %H:%M:%S}  #{r.id:<8} {str(r.state or '(none)'):23} "
            f"host={r.hostname or '-'}" + (f" job={r.job_id}" if r.job_id else ""))


@cli.group("repo")
def repo_group() -> None:
    """Repository submissions (stash_engine_repo_queue_states, stash_engine_submission_logs).

    \b
    dqueue repo submit 42            enqueue resource 42's deposit (held while hold-submissions.txt is set)
    dqueue repo submit 42 --force    send a version again that was sent already
    dqueue repo list --state rejected_shutting_down --host web-2
    dqueue repo show 42              its state history and submission logs
    Held submissions are re-enqueued by 'long_jobs restart' (--all-hosts, --from-host H).
    """


@repo_group.command("submit")
@click.argument("resource_id", type=ROW_ID)
@click.option("--force", is_flag=True, help="Send it again even though it was sent already (processing or "
              "later); recorded in the submission logs.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def repo_submit(app: AppContext, resource_id: int, force: bool, as_json: bool) -> None:
    """Submit RESOURCE_ID to the repository; safe to run twice.

    The enqueued state row (with this host's name, DQUEUE_HOSTNAME honoured) and its deposit
    job are committed together.  A second submit while its job is pending writes nothing; a
    version that was sent already is dropped (logged) unless --force is given.  While
    hold-submissions.txt is in the flag directory the submission is recorded
    rejected_shutting_down and nothing is sent until 'long_jobs restart'.
    """
    try:
        result = submit(app.checked_engine(), resource_id, app.settings, force=force)
    except SubmitRefused as exc:
        raise click.ClickException(str(exc)) from None
    missing = app.settings.merritt.missing()
    if missing and result.job_id is not None and result.outcome is Outcome.ENQUEUED:
        # Enqueued anyway (the settings may be fixed before a worker runs it); say so now, not at 3 a.m.
        click.echo(f"warning: {', '.join(missing)} not set: the deposit will fail until they are", err=True)
    if as_json:
        return emit_json(result.as_dict())
    click.echo(result.message)


@repo_group.command("list")
@click.option("--state", type=click.Choice(REPO_STATES), help="Only submissions whose current state is this.")
@click.option("--host", help="Only submissions whose latest row names this host.")
@click.option("--limit", type=LIMIT, default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def repo_list(app: AppContext, state: str | None, host: str | None, limit: int, as_json: bool) -> None:
    """Each submitted resource with its current state (its latest row), oldest first."""
    engine = app.checked_engine()
    with engine.connect() as conn:
        found = repo.listing(conn, RepoState(state) if state else None, host, limit)
    if as_json:
        return emit_json([_row(r) for r in found])
    if not found:
        click.echo("repository submissions: none")
        return
    click.echo(f"repository submissions ({len(found)}):")
    for r in found:
        click.echo(f"  resource {r.resource_id:<8} {_line(r)}")


@repo_group.command("show")
@click.argument("resource_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def repo_show(app: AppContext, resource_id: int, as_json: bool) -> None:
    """RESOURCE_ID's state history and submission logs (requests and responses, credentials masked)."""
    engine = app.checked_engine()
    if resources.get(engine, resource_id) is None:
        raise click.ClickException(f"no resource {resource_id}")
    with engine.connect() as conn:
        states, logs = repo.history(conn, resource_id), repo.logs(conn, resource_id)
        uri = repo.download_uri(conn, resource_id)
    current = states[-1].state if states else None
    if as_json:
        return emit_json({"resource_id": resource_id, "state": current.value if current else None,
                          "download_uri": uri, "ark": repo.ark_of(uri), "states": [_row(r) for r in states],
                          "logs": [dataclasses.asdict(entry) for entry in logs]})
    click.echo(f"resource {resource_id}: {current or 'never submitted'}"
               + (f"  ({uri})" if uri else ""))
    click.echo(f"states ({len(states)}):" if states else "states: none")
    for r in states:
        click.echo(f"  {_line(r)}")
    click.echo(f"submission logs ({len(logs)}):" if logs else "submission logs: none")
    for entry in logs:
        click.echo(f"  {entry.created_at:%Y-%m-%d %H:%M:%S}  #{entry.id}")
        click.echo(f"    request:  {entry.archive_submission_request or ''}")
        click.echo(f"    response: {entry.archive_response or ''}")
