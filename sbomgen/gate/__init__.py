"""CI gates: validating supply-chain documents and checking policies against them."""
