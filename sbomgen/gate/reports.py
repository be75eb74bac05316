"""Policy results as JSON, SARIF 2.1.0 (for code scanning) and JUnit XML (one test case per rule)."""

from __future__ import annotations

import json
import re
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


def as_sarif(results: list[RuleResult], target: str, policy: str) -> dict:
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
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": target}}}],
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
                        "rules": [
                            {
                                "id": rule,
                                "name": rule.replace(".", "-"),
                                "shortDescription": {"text": RULES[rule]},
                                "defaultConfiguration": {"level": "error" if level_of[rule] == "error" else "warning"},
                            }
                            for rule in rule_ids
                        ],
                    }
                },
                "results": sarif_results,
                "invocations": [{"executionSuccessful": True, "commandLine": f"sbomgen check --policy {policy} {target}"}],
            }
        ],
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
