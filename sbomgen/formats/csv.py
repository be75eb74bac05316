"""A flat CSV of the components, one row each, for spreadsheets and quick greps."""

from __future__ import annotations

import csv
import io

from sbomgen.graph.model import DependencyGraph

COLUMNS = (
    "store_path", "name", "version", "output", "purl", "sha256", "digest_of", "nar_size",
    "depth", "drv_path", "source", "built", "fixed_output_hash", "download_url", "licenses",
    "homepage", "cpe", "description",
)


def render_csv(graph: DependencyGraph) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in graph.sorted_components():
        digest = c.digest
        fixed = c.fixed_output
        meta = c.meta
        writer.writerow(
            [
                c.store_path, c.name, c.version, c.output or "", c.purl,
                digest[1] if digest else "", digest[0].value if digest else "",
                "" if c.nar_size is None else c.nar_size, c.depth, c.drv_path or "",
                "true" if c.is_source else "false", "true" if c.valid else "false",
                f"{fixed.mode}:{fixed.algo}:{fixed.hash_hex}" if fixed else "",
                " ".join(c.download_urls),
                c.license_expression or "",
                meta.homepage or "" if meta else "", meta.cpe or "" if meta else "",
                meta.description or "" if meta else "",
            ]
        )
    return stream.getvalue()
