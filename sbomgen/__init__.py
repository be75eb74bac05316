"""sbomgen: supply-chain evidence (SBOMs, provenance, images, reproducibility) for Nix builds."""

__version__ = "0.1.0"
