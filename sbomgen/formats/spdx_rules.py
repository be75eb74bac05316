"""SPDX 2.3 rules beyond the JSON schema, checked on the JSON data in one linear pass.

These are the rules spdx-tools' ``validate_full_spdx_document`` applies to the fields sbomgen
writes, with spdx-tools' own patterns and licence list: SPDX id syntax and uniqueness, both
ends of every relationship, a ``DESCRIBES`` relationship, the document namespace, download
locations and homepages, checksum lengths, external reference categories and locators, and
licence expressions (known SPDX ids, ``LicenseRef-`` ids defined in the document).

spdx-tools itself needs its object model: building and validating it costs 5 s for a
40,000-package build closure, against 0.3 s here.  ``sbomgen --full-validation`` and
``sbomgen validate`` still run it, and the tests hold these rules to agree with it on every
fixture document and on documents broken one rule at a time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from uritools import isabsuri, urisplit

from sbomgen.graph import licensing

# spdx-tools 0.8's patterns (spdx_tools.spdx.validation.uri_validators and
# external_package_ref_validator), copied so that a run does not import spdx-tools and
# beartype (0.15 s); tests/unit/test_spdx_rules.py requires them to equal spdx-tools' own.
URL_PATTERN = (
    "(http:\\/\\/www\\.|https:\\/\\/www\\.|http:\\/\\/|https:\\/\\/|ssh:\\/\\/|git:\\/\\/|svn:\\/\\/|sftp:"
    "\\/\\/|ftp:\\/\\/)?([\\w\\-.!~*'()%;:&=+$,]+@)?[a-z0-9]+([\\-\\.]{1}[a-z0-9]+){0,100}\\.[a-z]{2,5}"
    "(:[0-9]{1,5})?(\\/.*)?"
)
DOWNLOAD_LOCATION_PATTERN = (
    "^((((git|hg|svn|bzr)\\+)?" + URL_PATTERN + ")|(git\\+git@[a-zA-Z0-9\\.\\-]+:[a-zA-Z0-9/\\\\.@\\-]+)"
    "|(bzr\\+lp:[a-zA-Z0-9\\.\\-]+))$"
)
TYPE_TO_REGEX = {
    "cpe22Type": r"^c[pP][eE]:/[AHOaho]?(:[A-Za-z0-9._\-~%]*){0,6}$",
    "cpe23Type": (
        r'^cpe:2\.3:[aho\*\-](:(((\?*|\*?)([a-zA-Z0-9\-\._]|(\\[\\\*\?!"#$$%&\'\(\)\+,\/:;<=>@\[\]\^'
        r"`\{\|}~]))+(\?*|\*?))|[\*\-])){5}(:(([a-zA-Z]{2,3}(-([a-zA-Z]{2}|[0-9]{3}))?)|[\*\-]))(:(((\?*"
        r'|\*?)([a-zA-Z0-9\-\._]|(\\[\\\*\?!"#$$%&\'\(\)\+,\/:;<=>@\[\]\^`\{\|}~]))+(\?*|\*?))|[\*\-])){4}$'
    ),
    "maven-central": r"^[^:]+:[^:]+(:[^:]+)?$",
    "npm": r"^[^@]+@[^@]+$",
    "nuget": r"^[^/]+/[^/]+$",
    "bower": r"^[^#]+#[^#]+$",
    "purl": r"^pkg:.+(\/.+)?\/.+(@.+)?(\?.+)?(#.+)?$",
    "swh": r"^swh:1:(snp|rel|rev|dir|cnt):[0-9a-fA-F]{40}$",
    "gitoid": r"^gitoid:(blob|tree|commit|tag):(sha1:[0-9a-fA-F]{40}|sha256:[0-9a-fA-F]{64})$",
}
_URL = re.compile(URL_PATTERN, re.IGNORECASE)
_DOWNLOAD_LOCATION = re.compile(DOWNLOAD_LOCATION_PATTERN, re.IGNORECASE)


def _bad_url(url: str) -> bool:
    return not _URL.match(url)


def _bad_download_location(location: str) -> bool:
    return _bad_url(location) and not _DOWNLOAD_LOCATION.match(location)


def _bad_uri(uri: str) -> bool:
    return not isabsuri(uri) or urisplit(uri).scheme is None
_INTERNAL_ID = re.compile(r"^SPDXRef-[\da-zA-Z.-]+$")
_EXTERNAL_ID = re.compile(r"^DocumentRef-[\da-zA-Z.+-]+(:SPDXRef-[\da-zA-Z.-]+)?$")
_LICENSE_REF = re.compile(r"^(DocumentRef-[\da-zA-Z.+-]+:)?LicenseRef-[\da-zA-Z.-]+$")
_CHECKSUM_HEX = {
    "SHA1": 40, "SHA224": 56, "SHA256": 64, "SHA384": 96, "SHA512": 128, "SHA3-256": 64, "SHA3-384": 96,
    "SHA3-512": 128, "BLAKE2b-256": 64, "BLAKE2b-384": 96, "BLAKE2b-512": 128, "MD2": 32, "MD4": 32,
    "MD5": 32, "MD6": None, "ADLER32": 8, "BLAKE3": None,
}
#: spdx-tools' CATEGORY_TO_EXTERNAL_PACKAGE_REF_TYPES, in the JSON spelling
_CATEGORY_TYPES = {
    "SECURITY": {"cpe22Type", "cpe23Type", "advisory", "fix", "url", "swid"},
    "PACKAGE-MANAGER": {"maven-central", "npm", "nuget", "bower", "purl"},
    "PERSISTENT-ID": {"swh", "gitoid"},
    "OTHER": None,
}
_SPECIAL = {"NOASSERTION", "NONE"}
_PATTERNS = {kind: re.compile(pattern) for kind, pattern in TYPE_TO_REGEX.items()}


@lru_cache(maxsize=4096)
def _licence_problem(expression: Any, defined: frozenset[str]) -> str | None:
    """spdx-tools' licence-expression rule, read by sbomgen's one SPDX parser
    (:mod:`sbomgen.graph.licensing`): the expression parses, and each ``LicenseRef-`` in it is
    defined in the document (or names another document)."""
    if expression in _SPECIAL:
        return None
    try:
        tree = licensing.parse(expression)
    except licensing.LicenceExpressionError:
        return licensing.problem(expression)
    for leaf in licensing.leaves(tree):
        if leaf.is_ref and ":" not in leaf.id and leaf.id not in defined:
            return f"{leaf.id!r} is neither on the SPDX licence list nor defined in hasExtractedLicensingInfos"
    return None


def spdx_rule_errors(document: dict[str, Any]) -> list[str]:
    """Every broken rule as ``/json/pointer: message``; empty when the document keeps them."""
    errors: list[str] = []
    namespace = document.get("documentNamespace", "")
    if _bad_uri(namespace) or "#" in namespace:
        errors.append(f"/documentNamespace: {namespace!r} is not a valid URI without '#'")
    ids: dict[str, str] = {"SPDXRef-DOCUMENT": "/SPDXID"}
    if document.get("SPDXID") != "SPDXRef-DOCUMENT":
        errors.append(f"/SPDXID: the document's SPDX id must be 'SPDXRef-DOCUMENT', not {document.get('SPDXID')!r}")
    defined: set[str] = set()
    for index, info in enumerate(document.get("hasExtractedLicensingInfos", [])):
        licence_id = info.get("licenseId", "")
        if not _LICENSE_REF.match(licence_id):
            errors.append(f"/hasExtractedLicensingInfos/{index}/licenseId: {licence_id!r} is not a valid LicenseRef id")
        defined.add(licence_id)
    frozen = frozenset(defined)
    for index, package in enumerate(document.get("packages", [])):
        here = f"/packages/{index}"
        spdx_id = package.get("SPDXID", "")
        if not _INTERNAL_ID.match(spdx_id):
            errors.append(f"{here}/SPDXID: {spdx_id!r} is not a valid SPDX id (SPDXRef-[a-zA-Z0-9.-]+)")
        elif spdx_id in ids:
            errors.append(f"{here}/SPDXID: duplicate SPDX id {spdx_id!r} (also at {ids[spdx_id]})")
        else:
            ids[spdx_id] = here
        location = package.get("downloadLocation", "NOASSERTION")
        if location not in _SPECIAL and _bad_download_location(location):
            errors.append(f"{here}/downloadLocation: {location!r} is not a valid download location")
        homepage = package.get("homepage")
        if homepage is not None and homepage not in _SPECIAL and _bad_url(homepage):
            errors.append(f"{here}/homepage: {homepage!r} is not a valid URL")
        for c, checksum in enumerate(package.get("checksums", [])):
            algorithm, value = checksum.get("algorithm"), checksum.get("checksumValue", "")
            length = _CHECKSUM_HEX.get(algorithm, 0)
            if length is not None and (len(value) != length or value.strip("0123456789abcdef")):
                errors.append(f"{here}/checksums/{c}: {algorithm} value {value!r} is not {length} lowercase hex digits")
        for r, ref in enumerate(package.get("externalRefs", [])):
            category, kind, locator = ref.get("referenceCategory"), ref.get("referenceType"), ref.get("referenceLocator", "")
            allowed = _CATEGORY_TYPES.get(category, set())
            if allowed is not None and kind not in allowed:
                errors.append(f"{here}/externalRefs/{r}: type {kind!r} is not allowed in category {category!r}")
            elif kind in _PATTERNS and not _PATTERNS[kind].match(locator):
                errors.append(f"{here}/externalRefs/{r}: {locator!r} is not a valid {kind} locator")
            elif " " in locator:
                errors.append(f"{here}/externalRefs/{r}: the locator {locator!r} must not contain spaces")
        if package.get("filesAnalyzed") is False and "packageVerificationCode" in package:
            errors.append(f"{here}/packageVerificationCode: must be absent when filesAnalyzed is false")
        for field in ("licenseConcluded", "licenseDeclared"):
            expression = package.get(field)
            if expression is not None:
                problem = _licence_problem(expression, frozen)
                if problem:
                    errors.append(f"{here}/{field}: {problem}")
    describes = False
    for index, relationship in enumerate(document.get("relationships", [])):
        for end in ("spdxElementId", "relatedSpdxElement"):
            element = relationship.get(end, "")
            if element in ids or element in _SPECIAL and end == "relatedSpdxElement" or _EXTERNAL_ID.match(element):
                continue
            errors.append(f"/relationships/{index}/{end}: {element!r} is not an element of this document")
        if relationship.get("relationshipType") == "DESCRIBES" and relationship.get("spdxElementId") == "SPDXRef-DOCUMENT":
            describes = True
    if not describes and not document.get("documentDescribes"):
        errors.append("/relationships: the document must DESCRIBE at least one element")
    return errors
