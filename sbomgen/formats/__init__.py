"""Documents made from a :class:`~sbomgen.graph.model.DependencyGraph`; no store I/O here."""
