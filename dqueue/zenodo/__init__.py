"""Copying dataset versions to Zenodo.

``http`` (the API client), ``upload`` (streamed files), ``metadata`` (what a deposition says),
``copier`` (one copy's steps) and ``jobs`` (the ``zenodo.copy`` job, ``send`` and the
``long_jobs`` hooks).
"""
