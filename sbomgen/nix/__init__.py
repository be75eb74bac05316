"""Everything about Nix: store DB, .drv parser, NAR, base32, hashes, store paths."""
