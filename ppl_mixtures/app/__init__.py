"""The application layer: the ``ppl-mixtures`` command line, the demo, the reference cache."""
