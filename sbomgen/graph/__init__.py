"""The model (components and their dependency graph), closure walks, names, purls, metadata."""
