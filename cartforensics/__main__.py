"""``python -m cartforensics`` runs the command-line interface."""

from cartforensics.cli.app import main

raise SystemExit(main())
