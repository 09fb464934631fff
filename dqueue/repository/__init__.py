"""Repository submissions: deposits of dataset versions in Merritt (CDL's preservation repository).

Pure builders live here first: ``checkm`` (the object manifest Merritt's ingest pulls files from),
``datacite`` (``mrt-datacite.xml`` and ``mrt-delete.txt``).  The deposit job, its tables and its CLI
build on them; the fake Merritt they are tested against is ``dqueue.testing.merritt``.
"""
