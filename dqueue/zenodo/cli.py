"""``dqueue zenodo send|list|show``: copies of dataset versions to Zenodo."""
from __future__ import annotations

import dataclasses

import click

from ..cli.common import LIMIT, ROW_ID, AppContext, emit_json
from ..cli.main import cli
from ..stash import resources
from . import jobs as zenodo_jobs
from . import store as zenodo_copies
from .schema import COPY_STATES


def print_copies(copies: list[zenodo_copies.Copy]) -> None:
    click.echo(f"zenodo copies ({len(copies)}):" if copies else "zenodo copies: none")
    for c in copies:
        click.echo(f"  copy {c.id}: {c.copy_type} v{c.version} (resource {c.resource_id}) {c.state} "
                   f"retries={c.retries} deposition={c.deposition_id or '-'} job={c.job_id or '-'}"
                   + (f"  note: {c.note}" if c.note else ""))


@cli.group("zenodo")
def zenodo_group() -> None:
    """Copies of dataset versions to Zenodo (the stash_engine_zenodo_copies table)."""


@zenodo_group.command("send")
@click.argument("resource_id", type=ROW_ID)
@click.option("--type", "kind", type=click.Choice(["data", "software", "supp"]), default="data",
              show_default=True, help="Which files of the version to copy.")
@click.option("--publish", is_flag=True, help="Publish the staged software or supp deposition "
              "(the *_publish copy types).")
@click.option("--json", "as_json", is_flag=True, help="Print the copy row as JSON.")
@click.pass_obj
def zenodo_send(app: AppContext, resource_id: int, kind: str, publish: bool, as_json: bool) -> None:
    """Enqueue the copy of RESOURCE_ID to Zenodo; safe to run twice.

    One row per resource and copy type: the row and its job are committed together, and a
    second send prints the existing row and writes nothing.  Copies of one dataset run in
    version order; a later version waits (state enqueued, note says for what).
    """
    try:
        sent = zenodo_jobs.send(app.checked_engine(), resource_id, kind, publish)
    except zenodo_jobs.SendRefused as exc:
        raise click.ClickException(str(exc)) from None
    c = sent.copy
    if as_json:
        return emit_json({"created": sent.created, **dataclasses.asdict(c)})
    if sent.created:
        click.echo(f"enqueued copy {c.id} ({c.copy_type} of resource {c.resource_id}) as job {c.job_id}")
    else:
        click.echo(f"copy {c.id} ({c.copy_type} of resource {c.resource_id}) exists already: {c.state}"
                   + (f", job {c.job_id}" if c.job_id else "") + "; nothing written")


@zenodo_group.command("list")
@click.option("--state", type=click.Choice(COPY_STATES), help="Only copies in this state.")
@click.option("--resource", "resource_id", type=ROW_ID, help="Only copies of this resource.")
@click.option("--identifier", help="Only copies of this dataset (e.g. its DOI).")
@click.option("--limit", type=LIMIT, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def zenodo_list(app: AppContext, state: str | None, resource_id: int | None, identifier: str | None,
                limit: int, as_json: bool) -> None:
    """List copies in dataset and version order."""
    engine = app.checked_engine()
    identifier_id = None
    if identifier is not None:
        identifier_id = resources.identifier_id_of(engine, identifier)
        if identifier_id is None:
            raise click.ClickException(f"no dataset {identifier!r}")
    found = zenodo_copies.find(engine, state=state, resource_id=resource_id, identifier_id=identifier_id,
                               limit=limit)
    if as_json:
        return emit_json([dataclasses.asdict(c) for c in found])
    print_copies(found)


@zenodo_group.command("show")
@click.argument("copy_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def zenodo_show(app: AppContext, copy_id: int, as_json: bool) -> None:
    """Show one copy with its log (error_info: every request and response, token masked)."""
    engine = app.checked_engine()
    found = zenodo_copies.get(engine, copy_id)
    if found is None:
        raise click.ClickException(f"no zenodo copy {copy_id}")
    info = zenodo_copies.error_info(engine, copy_id) or ""
    if as_json:
        return emit_json({**dataclasses.asdict(found), "error_info": info})
    print_copies([found])
    click.echo("error_info:\n" + (info or "(empty)"))
