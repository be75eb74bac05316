"""Evaluating a policy against an inventory: one result per rule, with every violation named."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sbomgen.errors import LimitExceededError
from sbomgen.formats.provenance import path_of_uri
from sbomgen.gate.documents import Inventory, Item
from sbomgen.gate.policy import Policy, in_range
from sbomgen.graph import licensing
from sbomgen.text import one_line

RULES = {
    "licenses.allow": "Every component's licence is allowed and not denied (SPDX expressions: OR needs one such branch, AND all)",
    "licenses.deny": "No component needs a denied licence (an exception does not change the licence it is WITH)",
    "deny.package": "No denied package (by name and version range)",
    "require.digest": "Every component has a SHA-256 digest",
    "require.purl": "Every component has a package URL",
    "require.license": "Every component declares a licence",
    "require.supplier": "Every component names its supplier",
    "closure.max_components": "The closure is no larger than allowed",
    "provenance.exists": "Provenance exists for the artifact",
    "provenance.signature": "The provenance is signed by a trusted key (--key, or key in [provenance])",
    "provenance.subject": "The provenance subject digest matches the artifact",
    "provenance.dependencies": "Every dependency digest in the provenance matches the SBOM",
    "reproducible": "The artifact rebuilds bit for bit",
    "fetches.fixed_hash": "No build-time fetch without a fixed hash",
}


@dataclass(slots=True)
class Violation:
    message: str
    component: str = ""  # purl, or name when there is none


@dataclass(slots=True)
class RuleResult:
    rule: str
    level: str
    checked: bool = True
    note: str = ""
    violations: list[Violation] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    @property
    def description(self) -> str:
        return RULES[self.rule]


def _who(item: Item) -> str:
    return item.purl or (f"{item.name}@{item.version}" if item.version else item.name)


def _label(item: Item) -> str:
    label = f"{item.name} {item.version}".strip()
    return label if len(label) <= 200 else label[:199] + "…"  # a name from elsewhere may be megabytes


@dataclass(slots=True)
class CheckContext:
    """What a check may use beyond the inventory (only available for store path targets)."""

    buildtime: Inventory | None = None
    rebuild: Callable[[], tuple[bool, str]] | None = None  # -> (reproducible, detail)
    verify_keys: list = field(default_factory=list)  # sbomgen.keys.VerifyKey: the keys provenance must be signed with


def evaluate(policy: Policy, inventory: Inventory, context: CheckContext) -> list[RuleResult]:
    items = [inventory.root, *inventory.items]
    results: list[RuleResult] = []
    if policy.allow_licenses or policy.deny_licenses:
        results += _licence_rules(policy, items)
    for rule in policy.deny:
        result = RuleResult("deny.package", rule.level, note=f"{rule.name} {rule.versions}".strip())
        for item in items:
            if item.name == rule.name and (not rule.versions or (item.version and in_range(item.version, rule.versions))):
                reason = f" ({rule.reason})" if rule.reason else ""
                result.violations.append(Violation(f"{_label(item)} is denied: {rule.name} {rule.versions or '(any version)'}{reason}", _who(item)))
        results.append(result)
    checks = {"digest": lambda i: i.sha256, "purl": lambda i: i.purl, "license": lambda i: i.license, "supplier": lambda i: i.supplier}
    for key, level in policy.require.items():
        result = RuleResult(f"require.{key}", level)
        for item in items:
            if not checks[key](item):
                result.violations.append(Violation(f"{_label(item)} has no {key}", _who(item)))
            elif key == "license" and licensing.problem(item.license):
                result.violations.append(Violation(f"{_label(item)} has no valid licence: {licensing.problem(item.license)}", _who(item)))
        results.append(result)
    if policy.max_components is not None:
        result = RuleResult("closure.max_components", policy.closure_level, note=f"at most {policy.max_components}")
        if len(items) > policy.max_components:
            result.violations.append(Violation(f"{len(items)} components, more than the {policy.max_components} allowed"))
        results.append(result)
    if policy.provenance_required:
        results += _provenance_rules(policy, inventory, items, context.verify_keys)
    if policy.reproducible:
        result = RuleResult("reproducible", policy.reproducible_level)
        if context.rebuild is None:
            result.checked, result.note = False, "needs a store path target (an SBOM file cannot be rebuilt)"
            result.violations.append(Violation("reproducibility could not be checked: the target is not a store path"))
        else:
            ok, detail = context.rebuild()
            if not ok:
                result.violations.append(Violation(f"{_label(inventory.root)} does not rebuild bit for bit: {detail}", _who(inventory.root)))
        results.append(result)
    if policy.fixed_hash_fetches:
        result = RuleResult("fetches.fixed_hash", policy.fetches_level)
        source = context.buildtime or inventory
        for item in [source.root, *source.items]:
            if item.unpinned_fetch:
                result.violations.append(Violation(f"{_label(item)} fetches {item.unpinned_fetch} without a fixed hash", _who(item)))
        if context.buildtime is None and inventory.kind not in ("buildtime",):
            result.note = "checked in the SBOM's components only (give a store path to check the build closure)"
        results.append(result)
    return results


def _licence_rules(policy: Policy, items: list[Item]) -> list[RuleResult]:
    """``licenses.allow`` and ``licenses.deny``, read with sbomgen's one SPDX parser
    (:mod:`sbomgen.graph.licensing`, whose :class:`~sbomgen.graph.licensing.LicencePolicy` says
    what allowed and denied mean). An expression that does not parse fails both rules: a gate
    cannot tell what it permits."""
    rules = licensing.LicencePolicy.of(policy.allow_licenses, policy.deny_licenses)
    allow = RuleResult("licenses.allow", policy.license_level) if policy.allow_licenses else None
    deny = RuleResult("licenses.deny", policy.license_level) if policy.deny_licenses else None
    for item in items:
        if not item.license:
            continue
        try:
            tree = licensing.parse(item.license)
        except licensing.LicenceExpressionError:
            message = f"{_label(item)}: {licensing.problem(item.license)}"
            for result in (allow, deny):
                if result is not None:
                    result.violations.append(Violation(message, _who(item)))
            continue
        text = one_line(str(tree))
        if allow is not None and not licensing.satisfiable(tree, lambda lic: rules.allowed(lic) and not rules.denied(lic)):
            allow.violations.append(Violation(f"{_label(item)}: licence {text} is not allowed", _who(item)))
        if deny is not None and not licensing.satisfiable(tree, lambda lic: not rules.denied(lic)):
            deny.violations.append(Violation(f"{_label(item)}: licence {text} requires a denied licence", _who(item)))
    return [result for result in (allow, deny) if result is not None]


def _provenance_rules(policy: Policy, inventory: Inventory, items: list[Item], keys: list) -> list[RuleResult]:
    from sbomgen.errors import MalformedAttestationError, SignatureError, UsageError
    from sbomgen.provenance import trusted_statement

    exists = RuleResult("provenance.exists", policy.provenance_level)
    signature = RuleResult("provenance.signature", policy.provenance_level)
    subject = RuleResult("provenance.subject", policy.provenance_level)
    dependencies = RuleResult("provenance.dependencies", policy.provenance_level)
    path = policy.provenance_file
    statement = None
    if not path or not os.path.lexists(path):
        exists.violations.append(Violation(f"no provenance at {path}" if path else "no provenance given (--provenance or [provenance] file)"))
    else:
        try:
            statement, signature.note = trusted_statement(path, keys, policy.provenance_require_signature)
        except (SignatureError, UsageError) as exc:
            signature.violations.append(Violation(one_line(str(exc), 400)))
        except LimitExceededError as exc:
            exists.violations.append(Violation(one_line(str(exc), 400)))
        except MalformedAttestationError as exc:
            exists.violations.append(Violation(f"{one_line(str(exc), 400)} (not SLSA provenance v1 sbomgen can read)"))
    if statement is None:
        why = "no provenance to compare" if exists.violations else "the provenance is not trusted (its signature did not verify)"
        for rule in (signature, subject, dependencies) if exists.violations else (subject, dependencies):
            rule.checked, rule.note = False, why
            rule.violations.append(Violation(f"cannot be checked: {why}"))
        return [exists, signature, subject, dependencies]
    root = inventory.root
    digests = [s["digest"].get("sha256") for s in statement["subject"]]
    if not root.sha256:
        subject.violations.append(Violation("the artifact has no SHA-256 to compare with", _who(root)))
    elif root.sha256 not in digests:
        subject.violations.append(Violation(f"no provenance subject has sha256 {root.sha256} ({_label(root)})", _who(root)))
    by_path = {i.store_path: i for i in items if i.store_path}
    compared = 0
    for dep in statement["predicate"]["buildDefinition"].get("resolvedDependencies", []):
        uri = dep.get("uri", "")
        item = by_path.get(path_of_uri(uri) if isinstance(uri, str) else "")
        recorded = dep.get("digest", {}).get("sha256")
        if item is None or not recorded or not item.sha256:
            continue
        compared += 1
        if item.sha256 != recorded:
            dependencies.violations.append(Violation(f"{one_line(dep.get('name', ''))}: provenance sha256 {recorded}, SBOM sha256 {item.sha256}", _who(item)))
    dependencies.note = f"{compared} dependencies present in both compared"
    return [exists, signature, subject, dependencies]
