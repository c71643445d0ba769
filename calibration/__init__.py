"""fer_edge.calibration — see README.md for what this stage does."""
