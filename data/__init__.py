"""The data room: where faces come from, before any stage uses them.

Dataset loaders (``loaders/``: every layout people have on disk → one :class:`~fer_edge.data.dataset.FaceDataset`),
the synthetic face world (``synth/``), camera footage → face crops (``faces/``), the roles of a config's ``data:``
section (``sources.py``) and its settings (``config.py``). It stands on the runtime contract alone -- numpy,
OpenCV and ``fer_edge.runtime`` (labels, preprocessing, the crop policy) -- so no stage reaches into ``train/``
for its data, and nothing here imports torch (``tests/test_hardening_imports.py``).
"""
