"""`python -m ppl_mixtures` runs the `ppl-mixtures` command."""

from .cli import main

raise SystemExit(main())
