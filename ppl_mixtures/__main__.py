"""`python -m ppl_mixtures` runs the `ppl-mixtures` command."""

from ppl_mixtures.app.cli import main

raise SystemExit(main())
