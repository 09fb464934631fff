"""Zenodo deposition metadata for a copy, from the resource's manifest fields (dryad.md 5.3)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from ..stash.resources import Resource

UPLOAD_TYPES = {"publication", "poster", "presentation", "dataset", "image", "video", "software",
                "lesson", "physicalobject", "other"}


def bare_doi(identifier: str) -> str:
    """'doi:10.5061/x' or 'https://doi.org/10.5061/x' -> '10.5061/x' (Zenodo's doi field)."""
    for prefix in ("https://doi.org/", "http://doi.org/", "http://dx.doi.org/", "doi:"):
        if identifier.lower().startswith(prefix):
            return identifier[len(prefix):]
    return identifier


def for_copy(resource: Resource, copy_type: str, *, doi: str | None, community: str = "",
             sandbox: bool = False) -> dict[str, Any]:
    """The ``metadata`` object to PUT for ``copy_type`` of ``resource``.

    Data copies carry the dataset's own DOI; software and supplemental copies carry the DOI that
    Zenodo pre-reserved for their deposition (``doi``), and point back at the dataset.
    """
    meta = resource.metadata
    kind = copy_type.split("_")[0]
    dataset_doi = bare_doi(resource.identifier)
    if sandbox and dataset_doi.startswith("10.5072/"):
        # The sandbox treats the 10.5072 test prefix as its own and refuses it as an external DOI.
        dataset_doi = "10.55072/" + dataset_doi[len("10.5072/"):]
    out: dict[str, Any] = {
        "upload_type": _upload_type(kind, meta.get("resource_type")),
        "publication_date": meta.get("publication_date") or dt.date.today().isoformat(),
        "title": resource.title,
        "creators": meta.get("creators") or [{"name": "Unknown"}],
        "description": meta.get("description") or "No abstract available",
        "access_right": "open",
        "license": _license(kind, meta),
    }
    if meta.get("keywords"):
        out["keywords"] = list(meta["keywords"])
    if meta.get("notes"):
        out["notes"] = meta["notes"]
    related = [dict(r) for r in meta.get("related_identifiers") or []]
    if kind == "data":
        out["doi"] = dataset_doi
    else:
        related.append({"relation": "isSourceOf" if kind == "software" else "isDerivedFrom",
                        "identifier": f"https://doi.org/{dataset_doi}", "resource_type": "dataset"})
        if doi:
            out["doi"] = doi
    if related:
        out["related_identifiers"] = related
    if community:
        out["communities"] = [{"identifier": community}]
    return out


def _upload_type(kind: str, resource_type: Any) -> str:
    if kind == "software":
        return "software"
    if kind == "supp":
        return "other"
    value = str(resource_type or "dataset").lower()
    return value if value in UPLOAD_TYPES else "dataset"


def _license(kind: str, meta: dict[str, Any]) -> str:
    if kind == "software":
        return str(meta.get("software_license") or "MIT")
    if kind == "supp":
        return "cc-by-4.0"
    rights = str(meta.get("license") or "cc-zero").lower()
    return "cc-zero" if ("cc0" in rights or "cc-zero" in rights) else "cc-by"
