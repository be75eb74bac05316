"""``python -m sbomgen`` is ``sbomgen``."""

from sbomgen.cli.main import main

main()
