"""Copying dataset versions to Zenodo (a capability: it uses the queue core, never the reverse).

``http`` (the API client, on dqueue/http.py), ``upload`` (streamed files), ``metadata`` (what a
deposition says), ``copier`` (one copy's steps), ``jobs`` (the ``zenodo.copy`` job, ``send``, the
``defer_jobs.txt`` marker and the ``long_jobs`` hooks), ``schema`` and ``store``
(``stash_engine_zenodo_copies`` and its SQL), ``settings`` (the ``[zenodo]`` section) and ``cli``
(``dqueue zenodo``).
"""
