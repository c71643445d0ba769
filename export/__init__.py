"""fer_edge.export — see README.md for what this stage does."""
