"""`python -m coralcheck` is the `coralcheck` command."""

from coralcheck.cli import main

raise SystemExit(main())
