"""``dqueue resource add|show``, ``dqueue zenodo send|list|show`` and ``dqueue console``."""
from __future__ import annotations

import code
import dataclasses
from typing import Any

import click

from .. import manifest, masking, models
from ..handlers.zenodo import jobs as zenodo_jobs
from ..store import resources, zenodo_copies
from ..store.stash_schema import COPY_STATES
from .common import AppContext, emit_json
from .main import cli


@cli.group("resource")
def resource_group() -> None:
    """Dataset versions (resources) and their files, registered from JSON manifests."""


@resource_group.command("add")
@click.argument("manifest_path", metavar="MANIFEST.json", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print {\"id\": …, \"version\": …} as JSON.")
@click.pass_obj
def resource_add(app: AppContext, manifest_path: str, as_json: bool) -> None:
    """Register one version of a dataset from MANIFEST.json and print its resource id.

    The manifest is checked whole before anything is written (docs/zenodo.md lists its fields);
    an error names the field, e.g. "files[2].size: …", and writes nothing.
    """
    try:
        parsed = manifest.load(manifest_path)
        engine = app.checked_engine()
        resource_id = resources.add(engine, parsed)
    except manifest.ManifestError as exc:  # it may quote a source URL: mask its credentials
        raise click.ClickException(masking.mask(f"{manifest_path}: {exc}")) from None
    found = resources.get(engine, resource_id)
    assert found is not None
    if as_json:
        return emit_json({"id": resource_id, "identifier": found.identifier, "version": found.version})
    click.echo(resource_id)


@resource_group.command("show")
@click.argument("resource_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def resource_show(app: AppContext, resource_id: int, as_json: bool) -> None:
    """Show a resource: its dataset, version, metadata, files and Zenodo copies."""
    engine = app.checked_engine()
    found = resources.get(engine, resource_id)
    if found is None:
        raise click.ClickException(f"no resource {resource_id}")
    copies = zenodo_copies.find(engine, resource_id=resource_id)
    if as_json:
        return emit_json({**dataclasses.asdict(found), "zenodo_copies": [dataclasses.asdict(c) for c in copies]})
    click.echo(f"resource {found.id}: {found.identifier} version {found.version}\ntitle: {found.title}")
    creators = "; ".join(c["name"] for c in found.metadata.get("creators", []))
    click.echo(f"creators: {creators}\nlicense: {found.metadata.get('license')}")
    click.echo(f"files ({len(found.files)}):")
    for f in found.files:
        digest = f" {f.digest_type}:{f.digest}" if f.digest else ""
        click.echo(f"  {f.kind:8} {f.state:7} {f.size:>14,}  {f.name}{digest}")
    _print_copies(copies)


def _print_copies(copies: list[zenodo_copies.Copy]) -> None:
    click.echo(f"zenodo copies ({len(copies)}):" if copies else "zenodo copies: none")
    for c in copies:
        click.echo(f"  copy {c.id}: {c.copy_type} v{c.version} (resource {c.resource_id}) {c.state} "
                   f"retries={c.retries} deposition={c.deposition_id or '-'} job={c.job_id or '-'}"
                   + (f"  note: {c.note}" if c.note else ""))


@cli.group("zenodo")
def zenodo_group() -> None:
    """Copies of dataset versions to Zenodo (the stash_engine_zenodo_copies table)."""


@zenodo_group.command("send")
@click.argument("resource_id", type=int)
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
@click.option("--resource", "resource_id", type=int, help="Only copies of this resource.")
@click.option("--identifier", help="Only copies of this dataset (e.g. its DOI).")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
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
    _print_copies(found)


@zenodo_group.command("show")
@click.argument("copy_id", type=int)
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
    _print_copies([found])
    click.echo("error_info:\n" + (info or "(empty)"))


@cli.command("console")
@click.option("-c", "--command", "command", help="Run these Python statements instead of a prompt.")
@click.pass_obj
def console(app: AppContext, command: str | None) -> None:
    """A Python prompt with the models and a database session ready.

    \b
    Resource.get(42).send_to_zenodo()          # data copy of resource 42
    Resource.get(42).send_software_to_zenodo(publish=True)
    ZenodoCopy.where(state="error")            # or ZenodoCopy.get(7).error_info
    session.execute(text("SELECT …")).all()    # any SQL, in a SQLAlchemy Session
    """
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = app.checked_engine()
    models.bind(engine)
    session = Session(engine)
    namespace: dict[str, Any] = {"Resource": models.Resource, "ZenodoCopy": models.ZenodoCopy,
                                 "session": session, "engine": engine, "text": text,
                                 "settings": app.settings}
    try:
        if command is not None:
            exec(compile(command, "<console>", "exec"), namespace)
        else:
            code.interact(banner=f"dqueue console on {engine.url.render_as_string(hide_password=True)}\n"
                          "Resource, ZenodoCopy, session, engine, text are ready.", local=namespace)
    finally:
        session.close()
