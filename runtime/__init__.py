"""fer_edge.runtime — see README.md for what this stage does."""
