"""Reproducibility: comparators per kind (file, directory, tar, OCI image) and the rebuild driver."""
