"""Copying dataset versions to Zenodo: the HTTP client (``http``) and streamed uploads (``upload``)."""
