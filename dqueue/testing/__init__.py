"""Fake servers that ship with dqueue, so that ``dqueue demo`` runs anywhere and tests use them too.

``dqueue.testing.zenodo``: a fake Zenodo (deposit and bucket APIs) with injectable faults; run it with
``python -m dqueue.testing.zenodo --port 0 --token T``.  Nothing here is imported by the engine.
"""
