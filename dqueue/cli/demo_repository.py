"""The repository part of ``dqueue demo``: a fake Merritt and a web server over the staging folder
(both shipped in ``dqueue.testing``, each in a process of its own: the workers fork and must not
inherit their sockets and threads), one dataset version submitted, and its state history."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

from ..config import Settings
from ..repository import store as repo_store
from ..repository.submit import submit
from ..stash import manifest, resources
from ..store.queue import transaction
from .common import AppContext

USER, PASSWORD = "demo-merritt", "demo-merritt-password"


def start_program(args: list[str], what: str, disable: str = "--no-merritt") -> tuple[subprocess.Popen[str], str]:
    """``python -m ARGS`` serving a fake; its first line of output is its URL."""
    proc = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.terminate()
        proc.wait(10)
        raise click.ClickException(f"{what} (python -m {args[0]}) did not start; {disable} runs the demo "
                                   "without it")
    return proc, url


class DemoMerritt:
    """The fake Merritt and the staging web server, and the settings that deposit there."""

    def __init__(self, folder: Path) -> None:
        self.staging = (folder / "merritt-staging").resolve()
        self.staging.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[str]] = []
        merritt, self.url = start_program(["dqueue.testing.merritt", "--port", "0", "--user", USER, "--password",
                                      PASSWORD, "--visible-after", "0.5"], "the fake Merritt")
        self.procs.append(merritt)
        try:
            web, self.web_url = start_program(["dqueue.testing.static", "--dir", str(self.staging), "--port", "0"],
                                         "the staging web server")
        except click.ClickException:
            self.stop()
            raise
        self.procs.append(web)
        click.echo(f"fake Merritt at {self.url}; staging folder {self.staging} served at {self.web_url}")

    def settings(self, settings: Settings) -> Settings:
        return settings.replace(merritt_base_url=self.url, merritt_collection="cdl_dryad",
                                merritt_profile="cdl_dryad_content", merritt_user=USER, merritt_password=PASSWORD,
                                merritt_submitter="dqueue-demo", merritt_public_base_url=self.web_url,
                                merritt_staging_dir=str(self.staging), merritt_check_interval=0.3)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)


def submit_version(app: AppContext, settings: Settings, source: Path) -> tuple[int, int]:
    """Register one version of a new dataset made of ``source`` and submit it: (resource, job) ids."""
    identifier = f"10.5072/dqueue.merritt.{int(time.time())}"
    rid = resources.add(app.engine, manifest.parse(
        {"identifier": identifier, "title": "dqueue demo deposit", "creators": [{"name": "Demo, Dee"}],
         "files": [{"name": source.name, "size": source.stat().st_size, "source": str(source.resolve())}]}))
    result = submit(app.engine, rid, settings)
    click.echo(f"dataset {identifier}: resource {rid} submitted to the repository: {result.message}")
    return rid, int(result.job_id or 0)


def show_history(app: AppContext, resource_id: int) -> None:
    """The state history of the resource the demo submitted, and where Merritt serves it."""
    with transaction(app.engine) as conn:
        rows = repo_store.history(conn, resource_id)
        uri = repo_store.download_uri(conn, resource_id)
    click.echo(f"stash_engine_repo_queue_states of resource {resource_id}:")
    for row in rows:
        click.echo(f"  {row.created_at:%H:%M:%S} {row.state.value if row.state else '?'} on {row.hostname}")
    if uri:
        click.echo(f"  download URI: {uri}")
    click.echo(f"  (requests sent and answers received: dqueue repo show {resource_id})")
    app.engine.dispose()
