"""Recording fakes of TensorRT (per API generation) and pycuda, so the build and the backend are tested here."""
