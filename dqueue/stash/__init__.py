"""The part of Dryad's model that every repository capability reads: datasets, versions, files.

``schema`` (the tables), ``resources`` (reading and writing them), ``manifest`` (the JSON that
``dqueue resource add`` reads).
"""
