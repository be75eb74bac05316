"""``sbomgen image``: a deterministic layered OCI image from a Nix closure."""

from __future__ import annotations

from typing import Annotated

import typer

from sbomgen.cli.common import command, console, echo, markup_safe, run_guarded

IMAGE_HELP = """Pack a Nix closure into a deterministic layered image: one layer per store path
(most shared first, like dockerTools.buildLayeredImage), byte-identical across runs.

Formats: an OCI image layout directory (oci), an oci-archive or a docker-archive tar.
--attach-sbom stores the image's SPDX and CycloneDX SBOMs in the layout as OCI 1.1
referrers of the image (manifests whose subject is the image). --referrers says who finds
them: blobs (default: only stored, index.json names the image alone, so untagged reads such
as skopeo inspect oci:DIR work), index (listed in index.json with their artifactType, as
oras writes layouts), or tag (the distribution spec's fallback: an index tagged
sha256-<hex of the image manifest digest>, for registries without the referrers API and
cosign's tag scheme). See docs/images.md.

Nothing is ever deleted: -o PATH must be new or an empty directory, or an image layout sbomgen
wrote before (replaced only with --force); any other existing path is refused (exit 9). An
archive format writes -o like any output file: -, a FIFO or a device is written to.
"""


def image_command(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="./result or a store path: the image's main closure.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH", help="Where to write the image.")] = "image.oci",
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="oci (a layout directory), oci-archive or docker-archive.")] = "oci",
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="Image name (default: the store path name).")] = None,
    tag: Annotated[str, typer.Option("--tag", metavar="TAG", help="Image tag.")] = "latest",
    contents: Annotated[list[str] | None, typer.Option("--contents", metavar="PATH", help="Store path whose tree is linked into / (repeatable).")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint", metavar="CMD", help="Entrypoint; a relative path is inside TARGET (bin/weather).")] = None,
    cmd: Annotated[list[str] | None, typer.Option("--cmd", metavar="ARG", help="Cmd arguments (repeatable).")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", metavar="K=V", help="Environment (repeatable).")] = None,
    working_dir: Annotated[str | None, typer.Option("--workdir", metavar="DIR", help="WorkingDir.")] = None,
    port: Annotated[list[str] | None, typer.Option("--port", metavar="PORT", help="Exposed port, e.g. 8080 or 8080/tcp (repeatable).")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", metavar="K=V", help="Label (repeatable).")] = None,
    max_layers: Annotated[int, typer.Option("--max-layers", min=1, metavar="N", help="At most N layers; the least shared paths share the last one.")] = 100,
    attach_sbom: Annotated[bool, typer.Option("--attach-sbom", help="Attach SPDX and CycloneDX SBOMs as OCI referrers.")] = False,
    attach_provenance: Annotated[str | None, typer.Option("--attach-provenance", metavar="FILE", help="Attach this provenance (statement or DSSE) as a referrer.")] = None,
    referrers: Annotated[str, typer.Option("--referrers", metavar="MODE", help="How index.json lists attached referrers: blobs (not at all), index, or tag (sha256-<digest> fallback tag).")] = "blobs",
    db: Annotated[str | None, typer.Option("--db", metavar="FILE", help="Nix store database.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the image layout sbomgen wrote before at PATH (any other existing non-empty PATH is refused).")] = False,
) -> None:
    def work() -> None:
        from sbomgen.errors import UsageError
        from sbomgen.image import ImageRequest, build_image

        if (attach_sbom or attach_provenance) and fmt == "docker-archive":
            raise UsageError("--attach-sbom/--attach-provenance need an OCI format: docker-archives have no referrers")
        if referrers not in ("blobs", "index", "tag"):
            raise UsageError(f"--referrers is blobs, index or tag, not {referrers!r}")
        err = console(stderr=True)
        request = ImageRequest(
            target=target, output=output, name=name, tag=tag, contents=tuple(contents or ()),
            entrypoint=tuple(entrypoint.split()) if entrypoint else (), cmd=tuple(cmd or ()), env=tuple(env or ()),
            working_dir=working_dir, exposed_ports=tuple(port or ()), labels=tuple(label or ()), max_layers=max_layers,
            fmt=fmt, attach_sbom=attach_sbom, provenance=attach_provenance, db_path=db, force=force, referrers=referrers,
        )
        with err.status(f"Packing {markup_safe(target)}…") if err.is_terminal else _null():
            result = build_image(request)
        echo(f"wrote {result.output} ({result.fmt}): manifest {result.manifest_digest}")
        print(f"  {len(result.layers)} layers for {result.closure_size} store paths" + (f", {len(result.referrers)} referrers" if result.referrers else ""))
        if result.referrers_tag:
            print(f"  referrers tagged {result.referrers_tag}")

    run_guarded(work)


def _null():
    from contextlib import nullcontext

    return nullcontext()


def register(app: typer.Typer) -> None:
    app.command("image", help=IMAGE_HELP)(command()(image_command))
