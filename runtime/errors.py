"""The named failures a user can cause.

Every stage raises one of these for a problem the user can fix (a bad file, a typo in a config, an
artefact built for another device). The CLI turns them into one line and exit code 1; anything else
is a bug and keeps its traceback.
"""


class FerEdgeError(Exception):
    """Base class: a failure a user can cause, with a message that says what to do."""


class ConfigError(FerEdgeError):
    """A config key, type or value is wrong."""


class ManifestError(FerEdgeError):
    """An artefact's manifest is missing, corrupt, or does not match the artefact or this producer."""


class DataError(FerEdgeError):
    """A dataset is empty, malformed, escapes its root, or lacks a class."""


class ModelError(FerEdgeError):
    """A model file cannot be loaded or does not carry the expected contract."""


class BackendUnavailable(FerEdgeError):
    """An inference backend (onnxruntime, tensorrt, pycuda) is not installed or cannot run here."""


class SourceError(FerEdgeError):
    """A video/camera source cannot be opened (after its retries)."""


class OutputError(FerEdgeError):
    """A result, video or image could not be written (disk full, device gone, permissions)."""
