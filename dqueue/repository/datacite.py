"""``mrt-datacite.xml`` (DataCite Metadata Schema 4 for one dataset version) and ``mrt-delete.txt``.

Merritt's ingest reads ``producer/mrt-datacite.xml`` to describe the object (CDLUC3/mrt-ingest,
``HandlerMinter``/``HandlerDescribe``), and on an update ``producer/mrt-delete.txt`` lists the files
the new version no longer has: one name per line, relative to ``producer/`` (``HandlerTransfer``
prefixes ``producer/`` itself and skips blank lines).

The version's metadata is what ``dqueue resource add`` stored (dqueue/manifest.py, docs/zenodo.md):
``creators`` ([{name, affiliation?, orcid?}], names written "Family, Given"), ``description``,
``keywords``, ``license``, ``related_identifiers`` ([{relation, identifier}]), ``publication_date``.
The XML is built with ElementTree, so text is escaped; characters XML 1.0 cannot hold at all (most
C0 controls, lone surrogates, U+FFFE/U+FFFF) are dropped first.
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dqueue.repository.checkm import ManifestError, check_name

NAMESPACE = "http://datacite.org/schema/kernel-4"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NAMESPACE} http://schema.datacite.org/meta/kernel-4/metadata.xsd"
UNAVAILABLE = "(:unav)"  # DataCite's standard value for "value unavailable, possibly unknown"
DEFAULT_PUBLISHER = "Dryad"
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_ORCID = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_LICENSES = {"cc-zero": ("CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
                         "https://creativecommons.org/publicdomain/zero/1.0/"),
             "cc-by": ("Creative Commons Attribution 4.0 International (CC BY 4.0)",
                       "https://creativecommons.org/licenses/by/4.0/")}

ET.register_namespace("", NAMESPACE)
ET.register_namespace("xsi", XSI)


def bare_doi(identifier: str) -> str:
    """'doi:10.5061/x', 'https://doi.org/10.5061/x' or '10.5061/x' -> '10.5061/x'; ValueError otherwise."""
    value = identifier.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if value.lower().startswith(prefix):
            value = value[len(prefix):]
            break
    if not _DOI.match(value):
        raise ValueError(f"identifier: {identifier!r} is not a DOI (10.NNNN/suffix)")
    return value


def for_version(identifier: str, title: str, metadata: Mapping[str, Any], version: int, *,
                publisher: str = DEFAULT_PUBLISHER, today: dt.date | None = None) -> str:
    """The ``mrt-datacite.xml`` text of one version of the dataset ``identifier`` (its DOI).

    ``metadata`` is the version's stored metadata; without creators the one creator is ``(:unav)``;
    the publication year is that of ``publication_date``, else of ``today`` (default: today, UTC)."""
    root = ET.Element(_q("resource"), {f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION})
    _text(root, "identifier", bare_doi(identifier), identifierType="DOI")
    creators = ET.SubElement(root, _q("creators"))
    for person in _creators(metadata.get("creators")):
        _creator(creators, person)
    titles = ET.SubElement(root, _q("titles"))
    _text(titles, "title", title.strip() or UNAVAILABLE)
    _text(root, "publisher", publisher)
    _text(root, "publicationYear", str(_year(metadata.get("publication_date"), today)))
    _text(root, "resourceType", "Dataset", resourceTypeGeneral="Dataset")
    keywords = [k for k in metadata.get("keywords") or [] if isinstance(k, str) and _clean(k).strip()]
    if keywords:
        subjects = ET.SubElement(root, _q("subjects"))
        for keyword in keywords:
            _text(subjects, "subject", keyword)
    related = [r for r in (_related(item) for item in metadata.get("related_identifiers") or []) if r]
    if related:
        parent = ET.SubElement(root, _q("relatedIdentifiers"))
        for kind, relation, value in related:
            _text(parent, "relatedIdentifier", value, relatedIdentifierType=kind, relationType=relation)
    _text(root, "version", str(version))
    license_key = str(metadata.get("license") or "").lower()
    if license_key in _LICENSES:
        name, uri = _LICENSES[license_key]
        rights = ET.SubElement(root, _q("rightsList"))
        _text(rights, "rights", name, rightsURI=uri)
    description = metadata.get("description")
    if isinstance(description, str) and _clean(description).strip():
        descriptions = ET.SubElement(root, _q("descriptions"))
        _text(descriptions, "description", description, descriptionType="Abstract")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def delete_list(names: Iterable[str]) -> str:
    """``mrt-delete.txt``: the names (relative to ``producer/``) the new version drops, one a line.
    An empty list gives "": leave the file out of the deposit then."""
    lines = []
    for i, name in enumerate(names):
        check_name(name, f"deleted file {i}")
        lines.append(name)
    if len(set(lines)) != len(lines):
        raise ManifestError("deleted files: a name is listed twice")
    return "".join(f"{name}\n" for name in lines)


def _creators(value: Any) -> Sequence[Mapping[str, Any]]:
    people = [c for c in value or [] if isinstance(c, Mapping) and isinstance(c.get("name"), str)
              and _clean(c["name"]).strip()]
    return people or [{"name": UNAVAILABLE}]


def _creator(parent: ET.Element, person: Mapping[str, Any]) -> None:
    creator = ET.SubElement(parent, _q("creator"))
    name = _clean(person["name"]).strip()
    family, comma, given = name.partition(",")
    if comma and family.strip() and given.strip():
        _text(creator, "creatorName", name, nameType="Personal")
        _text(creator, "givenName", given.strip())
        _text(creator, "familyName", family.strip())
    else:
        _text(creator, "creatorName", name)
    orcid = _ORCID.match(str(person.get("orcid") or "").strip())
    if orcid:
        _text(creator, "nameIdentifier", orcid[1], nameIdentifierScheme="ORCID", schemeURI="https://orcid.org")
    if isinstance(person.get("affiliation"), str) and _clean(person["affiliation"]).strip():
        _text(creator, "affiliation", person["affiliation"])


def _related(item: Any) -> tuple[str, str, str] | None:
    """(relatedIdentifierType, relationType, value), or None when the type cannot be told (left out)."""
    if not isinstance(item, Mapping) or not item.get("relation") or not item.get("identifier"):
        return None
    relation = str(item["relation"]).strip()
    relation = relation[:1].upper() + relation[1:]  # Zenodo writes isCitedBy, DataCite IsCitedBy
    value = str(item["identifier"]).strip()
    try:
        return "DOI", relation, bare_doi(value)
    except ValueError:
        pass
    if value.lower().startswith(("http://", "https://")):
        return "URL", relation, value
    if value.startswith("ark:/"):
        return "ARK", relation, value
    return None


def _year(publication_date: Any, today: dt.date | None) -> int:
    if isinstance(publication_date, str):
        try:
            return dt.date.fromisoformat(publication_date).year
        except ValueError:
            pass
    return (today or dt.datetime.now(dt.timezone.utc).date()).year


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, _q(tag), {k: _clean(v) for k, v in attributes.items()})
    element.text = _clean(text)
    return element


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"
