"""``dqueue resource add|show`` and ``dqueue console``: Dryad's datasets and versions."""
from __future__ import annotations

import code
import dataclasses
from typing import Any

import click

from .. import masking, models
from ..stash import manifest, resources
from ..zenodo import store as zenodo_copies
from ..zenodo.cli import print_copies
from .common import ROW_ID, AppContext, emit_json
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
@click.argument("resource_id", type=ROW_ID)
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
    print_copies(copies)


@cli.command("console")
@click.option("-c", "--command", "command", help="Run these Python statements instead of a prompt.")
@click.pass_obj
def console(app: AppContext, command: str | None) -> None:
    """A Python prompt with the models and a database session ready.

    \b
    Resource.get(42).send_to_zenodo()          # data copy of resource 42
    Resource.get(42).send_software_to_zenodo(publish=True)
    ZenodoCopy.where(state="error")            # or ZenodoCopy.get(7).error_info
    Resource.get(42).submit_to_repository()    # or (force=True); .repository_states()
    session.execute(text("SELECT …")).all()    # any SQL, in a SQLAlchemy Session
    """
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    engine = app.checked_engine()
    models.bind(engine, app.settings)
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
