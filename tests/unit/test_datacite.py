"""mrt-datacite.xml and mrt-delete.txt for a dataset version."""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from dqueue.repository.checkm import ManifestError
from dqueue.repository.datacite import NAMESPACE, UNAVAILABLE, bare_doi, delete_list, for_version

NS = {"d": NAMESPACE}
META: dict[str, Any] = {
    "creators": [{"name": "Doe, Jane", "affiliation": "UC Davis", "orcid": "0000-0002-1825-0097"},
                 {"name": "The Lab Consortium"}],
    "description": "Counts of <things> & \"stuff\"", "keywords": ["ecology", "birds"], "license": "cc-zero",
    "related_identifiers": [{"relation": "isCitedBy", "identifier": "https://doi.org/10.1234/article.5"},
                            {"relation": "isSupplementedBy", "identifier": "https://github.com/x/y"},
                            {"relation": "references", "identifier": "PMID:123"}],
    "publication_date": "2024-05-06",
}


def parsed(**overrides: Any) -> ET.Element:
    args: dict[str, Any] = {"identifier": "doi:10.5061/dryad.abc123", "title": "Birds & <bees>",
                            "metadata": META, "version": 3}
    args.update(overrides)
    text = for_version(args.pop("identifier"), args.pop("title"), args.pop("metadata"), args.pop("version"),
                       **args)
    return ET.fromstring(text.encode("utf-8"))


def test_required_fields_in_the_kernel_4_namespace() -> None:
    root = parsed()
    assert root.tag == f"{{{NAMESPACE}}}resource"
    identifier = root.find("d:identifier", NS)
    assert identifier is not None and identifier.text == "10.5061/dryad.abc123"
    assert identifier.get("identifierType") == "DOI"
    assert [e.text for e in root.findall("d:creators/d:creator/d:creatorName", NS)] == ["Doe, Jane",
                                                                                     "The Lab Consortium"]
    assert root.findtext("d:titles/d:title", namespaces=NS) == "Birds & <bees>"
    assert root.findtext("d:publisher", namespaces=NS) == "Dryad"
    assert root.findtext("d:publicationYear", namespaces=NS) == "2024"
    resource_type = root.find("d:resourceType", NS)
    assert resource_type is not None and resource_type.get("resourceTypeGeneral") == "Dataset"
    assert root.findtext("d:version", namespaces=NS) == "3"
    assert root.findtext("d:descriptions/d:description", namespaces=NS) == "Counts of <things> & \"stuff\""


def test_personal_names_orcid_affiliation_subjects_rights_related() -> None:
    root = parsed()
    jane = root.find("d:creators/d:creator", NS)
    assert jane is not None
    assert jane.findtext("d:givenName", namespaces=NS) == "Jane"
    assert jane.findtext("d:familyName", namespaces=NS) == "Doe"
    assert jane.findtext("d:nameIdentifier", namespaces=NS) == "0000-0002-1825-0097"
    assert jane.findtext("d:affiliation", namespaces=NS) == "UC Davis"
    assert [e.text for e in root.findall("d:subjects/d:subject", NS)] == ["ecology", "birds"]
    rights = root.find("d:rightsList/d:rights", NS)
    assert rights is not None and "zero" in (rights.get("rightsURI") or "")
    related = [(e.get("relatedIdentifierType"), e.get("relationType"), e.text)
               for e in root.findall("d:relatedIdentifiers/d:relatedIdentifier", NS)]
    # PMID:123 has no type we can tell: left out rather than mislabelled
    assert related == [("DOI", "IsCitedBy", "10.1234/article.5"),
                       ("URL", "IsSupplementedBy", "https://github.com/x/y")]


def test_no_creators_gives_unav_and_year_falls_back_to_today() -> None:
    root = parsed(metadata={}, today=dt.date(2031, 1, 2))
    assert [e.text for e in root.findall("d:creators/d:creator/d:creatorName", NS)] == [UNAVAILABLE]
    assert root.findtext("d:publicationYear", namespaces=NS) == "2031"
    assert root.find("d:descriptions", NS) is None and root.find("d:subjects", NS) is None


def test_characters_xml_cannot_hold_are_dropped() -> None:
    root = parsed(title="a\x00b\x1fc\ud800d\ufffee", metadata={**META, "description": "x\x07y"})
    assert root.findtext("d:titles/d:title", namespaces=NS) == "abcde"
    assert root.findtext("d:descriptions/d:description", namespaces=NS) == "xy"


def test_identifier_must_be_a_doi() -> None:
    assert bare_doi("https://doi.org/10.5061/dryad.x") == "10.5061/dryad.x"
    with pytest.raises(ValueError, match="not a DOI"):
        parsed(identifier="ark:/99999/fk4abc")


def test_delete_list_one_name_a_line() -> None:
    assert delete_list(["a.csv", "sub/b.txt"]) == "a.csv\nsub/b.txt\n"
    assert delete_list([]) == ""
    for bad in (["a\nb"], ["../x"], ["/abs"], ["a.csv", "a.csv"]):
        with pytest.raises(ManifestError):
            delete_list(bad)
