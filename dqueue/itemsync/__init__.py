"""Item sync: keep an item bank's GitLab projects hooked and their items ingested."""
