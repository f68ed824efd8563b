"""The analysis layer (data only, no figures): relabeling, diagnostics, comparisons."""
