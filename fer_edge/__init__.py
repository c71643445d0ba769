"""fer-edge: one import namespace for the four stages (train, export, calibration, runtime).

Kept import-light on purpose: ``import fer_edge`` must never pull torch, because the runtime and the
CLI's ``run``/``info``/``build`` verbs execute on devices that only have the runtime extra.
"""
__version__ = "0.1.0"
