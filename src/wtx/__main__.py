"""`python -m wtx` = the `wtx` console script (works before the project is pip-installed)."""

from wtx.cli import main

main()
