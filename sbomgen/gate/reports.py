"""Policy results as JSON, SARIF 2.1.0 (for code scanning) and JUnit XML (one test case per rule)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from urllib.parse import quote
from xml.etree import ElementTree

from sbomgen import __version__
from sbomgen.gate.rules import RULES, RuleResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def errors(results: list[RuleResult]) -> int:
    return sum(len(r.violations) for r in results if r.level == "error")


def as_json(results: list[RuleResult], target: str, policy: str) -> dict:
    return {
        "target": target,
        "policy": policy,
        "passed": errors(results) == 0,
        "rules": [
            {
                "rule": r.rule, "level": r.level, "passed": r.passed, "checked": r.checked, "note": r.note,
                "description": r.description,
                "violations": [{"message": v.message, "component": v.component} for v in r.violations],
            }
            for r in results
        ],
    }


#: ``tool.driver.informationUri``: where the tool is documented (the same host as the build type).
INFORMATION_URI = "https://sbomgen.dev"

#: The ``uriBaseId`` every result location is relative to (docs/ci.md): the directory ``sbomgen
#: check`` ran in when the target is inside it, else the target's own directory. Its absolute
#: ``file:`` URI is in the run's ``originalUriBaseIds``.
URI_BASE_ID = "SRCROOT"

#: What to do about each rule (``help`` of its reportingDescriptor): GitHub code scanning shows it
#: beside every result, and requires it (Multitool rule GH2012).
RULE_HELP = {
    "licenses.allow": "A component's licence is not in [licenses] allow. Replace the component, or add its licence "
    "(an SPDX id) to allow if your licence review accepts it. An SPDX expression passes when one OR branch, or every "
    "AND operand, is allowed.",
    "licenses.deny": "A component needs a licence listed in [licenses] deny. Replace or remove the component; an OR "
    "expression passes when one branch is not denied.",
    "deny.package": "A package matching a [[deny]] entry (name and version range) is in the closure. Upgrade or "
    "remove it, or change the entry if the version is fixed.",
    "require.digest": "A component has no SHA-256 digest, so it cannot be pinned. Build it (the store records the NAR "
    "hash), or regenerate the SBOM with sbomgen, which records one for every store path.",
    "require.purl": "A component has no package URL. Regenerate the SBOM with sbomgen (pkg:nix/NAME@VERSION for "
    "every store path), or add the purl in the tool that wrote the SBOM.",
    "require.license": "A component declares no licence. Pass nixpkgs metadata (--meta, nix-env -qa --meta --json) "
    "so licences are known, or relax [require] license.",
    "require.supplier": "A component names no supplier. Add supplier data in the tool that wrote the SBOM, or relax "
    "[require] supplier.",
    "closure.max_components": "The closure has more components than [closure] max_components allows. Remove "
    "dependencies (sbomgen why explains why each is there), or raise the limit.",
    "provenance.exists": "No readable SLSA provenance was found for the artifact. Write it with provenance ./result "
    "-o FILE (or sbomgen build) and pass it with --provenance or [provenance] file.",
    "provenance.signature": "The provenance is not signed by a trusted key. Sign it with provenance --sign-key, and "
    "pass the public key with --key or [provenance] key.",
    "provenance.subject": "No provenance subject has the artifact's digest: the provenance describes another build. "
    "Regenerate it for this artifact.",
    "provenance.dependencies": "A dependency's digest in the provenance differs from the SBOM's: the two describe "
    "different builds. Regenerate both from the same build.",
    "reproducible": "Rebuilding the artifact gave different bits. Run sbomgen rebuild --recursive to see which "
    "derivation differs and why (timestamps, build paths, ordering...).",
    "fetches.fixed_hash": "A build-time fetch has no fixed output hash, so its content is not pinned. Use a fetcher "
    "with a hash (fetchurl, fetchFromGitHub with hash = ...).",
}


def invoked_command() -> list[str]:
    """The command line this process was started with, as the user ran it: ``sbomgen check ...``, or
    ``python3 -m sbomgen check ...`` (``sys.orig_argv``) when run as a module."""
    if os.path.basename(sys.argv[0] or "") == "__main__.py":
        return list(getattr(sys, "orig_argv", sys.argv))
    return list(sys.argv)


def _file_uri(path: str, directory: bool = False) -> str:
    uri = "file://" + quote(path, safe="/+=-._~!$&'()*,;:@")
    return uri.rstrip("/") + "/" if directory else uri


def _location_of(target: str, cwd: str) -> tuple[str, str]:
    """(base directory, relative URI reference) of the file or directory ``target`` names.

    An image spec (``oci:DIR[:TAG]``, ``oci-archive:FILE``...) names its file or directory. The path
    is made absolute without resolving symlinks (``./result`` stays ``result``)."""
    path = target
    prefix, colon, rest = target.partition(":")
    if colon and prefix in ("oci", "oci-archive", "docker-archive") and rest:
        path = rest.split(":", 1)[0] if prefix == "oci" and not os.path.exists(rest) else rest
    path = os.path.normpath(os.path.join(cwd, path))
    relative = os.path.relpath(path, cwd)
    if relative == "." or relative.startswith(".." + os.sep) or relative == "..":
        base, relative = os.path.dirname(path), os.path.basename(path) or "."
    else:
        base = cwd
    return base, quote(relative, safe="/+=-._~!$&'()*,;:@")


def as_sarif(results: list[RuleResult], target: str, policy: str, command: list[str] | None = None, cwd: str | None = None) -> dict:
    """SARIF 2.1.0 for code scanning: every rule with help text, locations relative to
    :data:`URI_BASE_ID`, and the command that ran (``command``, default :func:`invoked_command`)."""
    cwd = os.path.abspath(cwd or os.getcwd())
    command = invoked_command() if command is None else command
    base, uri = _location_of(target, cwd)
    rule_ids = sorted({r.rule for r in results})
    index = {rule: i for i, rule in enumerate(rule_ids)}
    level_of = {r.rule: r.level for r in results}
    sarif_results = []
    for result in results:
        for violation in result.violations:
            entry = {
                "ruleId": result.rule,
                "ruleIndex": index[result.rule],
                "level": "error" if result.level == "error" else "warning",
                "message": {"text": violation.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": URI_BASE_ID}}}],
            }
            if violation.component:
                entry["locations"][0]["logicalLocations"] = [{"name": violation.component, "kind": "package"}]
                entry["partialFingerprints"] = {"sbomgenComponent/v1": f"{result.rule}:{violation.component}"}
            sarif_results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sbomgen",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(rule, level_of[rule]) for rule in rule_ids],
                    }
                },
                "originalUriBaseIds": {
                    URI_BASE_ID: {
                        "uri": _file_uri(base, directory=True),
                        "description": {"text": "The directory sbomgen check ran in (the target's own directory when the target is outside it)."},
                    }
                },
                "results": sarif_results,
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "commandLine": shlex.join(command),
                        "arguments": command[1:],
                        "workingDirectory": {"uri": _file_uri(cwd, directory=True)},
                        "properties": {"target": target, "policy": policy},
                    }
                ],
            }
        ],
    }


def _rule(rule: str, level: str) -> dict:
    description, help_text = RULES[rule], RULE_HELP[rule]
    return {
        "id": rule,
        "name": "".join(part[:1].upper() + part[1:] for part in re.split(r"[._]", rule)),
        "shortDescription": {"text": description},
        "fullDescription": {"text": f"{description}. Rule {rule} of an sbomgen policy (docs/ci.md)."},
        "help": {"text": help_text, "markdown": f"**{description}.** {help_text}"},
        "defaultConfiguration": {"level": "error" if level == "error" else "warning"},
    }


#: what XML 1.0 cannot carry at all (not even as a character reference): C0 controls but tab,
#: newline and CR, lone surrogates (undecodable file names), U+FFFE/U+FFFF. ElementTree writes
#: them raw and the report no longer parses; they are shown as ``\\xNN`` / ``\\uNNNN`` instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """A string from an input (component names, versions, messages, the target) made safe for
    an XML 1.0 document; ElementTree escapes ``<``, ``&`` and quotes itself."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", str(value))


def as_junit(results: list[RuleResult], target: str) -> str:
    failures = sum(1 for r in results if r.violations and r.level == "error")
    x = xml_text
    suite = ElementTree.Element(
        "testsuite", name=x(f"sbomgen policy: {target}"), tests=str(len(results)), failures=str(failures), errors="0",
        skipped=str(sum(1 for r in results if not r.checked)),
    )
    for result in results:
        name = f"{result.rule} ({result.note})" if result.rule == "deny.package" else result.rule
        case = ElementTree.SubElement(suite, "testcase", classname="sbomgen.policy", name=x(name))
        text = x("\n".join(v.message for v in result.violations))
        if not result.checked:
            ElementTree.SubElement(case, "skipped", message=x(result.note))
        elif result.violations and result.level == "error":
            failure = ElementTree.SubElement(case, "failure", message=x(f"{len(result.violations)} violation(s): {result.description}"), type=x(result.rule))
            failure.text = text
        elif result.violations:
            ElementTree.SubElement(case, "system-out").text = f"warning: {text}"
    root = ElementTree.Element("testsuites", name="sbomgen check", tests=str(len(results)), failures=str(failures))
    root.append(suite)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def sarif_text(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"
