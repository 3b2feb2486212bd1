"""`python -m approver` is the `approver` command."""

from approver.cli import main

raise SystemExit(main())
