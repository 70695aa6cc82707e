"""`python -m learnlog` is the `learnlog` command."""

from learnlog.cli import main

main()
