#!/usr/bin/env bash
# The main job on the bundled example: build the weather app with the real Nix into a private
# store under ./.sbomgen-example/, then write the SBOMs of that result with
# `sbomgen -f fixtures/weather.nix -A app --depth=2`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nix-build >/dev/null 2>&1; then
    echo "Installing Nix (Debian package nix-bin)..." >&2
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null
fi

# sbomgen itself: the installed command (README: pip install -e .), else this checkout's package.
if command -v sbomgen >/dev/null 2>&1; then
    SBOMGEN=(sbomgen)
elif python3 -c 'import sbomgen.cli.main' >/dev/null 2>&1; then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    SBOMGEN=(python3 -m sbomgen)
else
    echo "sbomgen is not installed: run 'pip install -e .' from $PWD first" >&2
    exit 1
fi

root="$PWD/.sbomgen-example"
mkdir -p "$root"
chmod 0755 "$root"
export NIX_STORE_DIR="$root/store" NIX_STATE_DIR="$root/state" NIX_LOG_DIR="$root/log"
# Offline and daemon-less: no binary cache, no sandbox, build as the current user.
export NIX_CONFIG=$'substituters =\nsandbox = false\nbuild-users-group ='

echo "Building fixtures/weather.nix -A app with nix-build into $root/store ..." >&2
if ! nix-build fixtures/weather.nix -A app -o "$root/result" >/dev/null 2>"$root/build.log"; then
    cat "$root/build.log" >&2
    exit 1
fi
cd "$root"
# The built ./result, with licences, suppliers, CPEs and maintainers evaluated from the expression
# itself (keyed by derivation): the same closure as `sbomgen ./result --depth=2`, with its facts.
"${SBOMGEN[@]}" -f ../fixtures/weather.nix -A app --depth=2
echo
echo "SBOMs: $root/sbom.spdx.json and $root/sbom.cdx.json"
