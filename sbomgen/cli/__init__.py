"""Command-line front ends (typer apps only)."""
