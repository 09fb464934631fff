"""Fake servers that ship with dqueue, so that ``dqueue demo`` runs anywhere and tests use them too.

``dqueue.testing.zenodo``: a fake Zenodo (deposit and bucket APIs) with injectable faults; run it with
``python -m dqueue.testing.zenodo --port 0 --token T``.  ``dqueue.testing.merritt``: a fake Merritt
(deposit API, asynchronous ingest that fetches and checks every file, local-id search), run with
``python -m dqueue.testing.merritt --port 0 --user U --password P``; ``dqueue.testing.static``: a
static file server over a staging directory, from which it fetches.  ``dqueue.testing.server``: what
they share (the serving thread, injected faults, the ``python -m`` main loop).  Nothing here is
imported by the engine.
"""
