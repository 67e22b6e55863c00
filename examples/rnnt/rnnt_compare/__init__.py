"""The RNN-T recogniser's comparison driver (examples/rnnt/compare.py):
the RESULT schema (schema.py), the runner with its cache and the report."""
