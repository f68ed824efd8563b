"""The presentation layer: figures, markdown/JSON tables, report folders."""
