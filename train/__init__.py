"""fer_edge.train — see README.md for what this stage does."""
