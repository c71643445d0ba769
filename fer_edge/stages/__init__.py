"""One settings→call function per stage, shared by its ``fer-edge`` verb and by ``fer-edge pipeline``.

``from fer_edge.stages import export; call = export.from_config(cfg, opset=13); call(checkpoint, out)``.
Each module reads its config section (and the verb's flags), validates it and returns a :class:`StageCall`;
the pipeline hashes that call, so a stage re-runs exactly when what it is called with changes. Artefact
names come from :mod:`fer_edge.runtime.artefacts`. Importing this package imports no stage.
"""
from .call import StageCall, jsonable, pick, refuse_in_pipeline

__all__ = ["StageCall", "jsonable", "pick", "refuse_in_pipeline"]
