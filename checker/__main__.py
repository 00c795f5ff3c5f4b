"""`python -m checker` is the `checker` command."""

from checker.entry import main

main()
