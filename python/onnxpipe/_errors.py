"""onnxpipe's exceptions: one class per onnxpipe::ErrorCode, all under onnxpipe.Error."""


class Error(Exception):
    """A failure of onnxpipe. The message is the C++ one (context outermost first).

    Attributes:
        code: the error code's name ("usage", "invalid_model", ...).
        stage: where a pipeline stage failed: {"kind", "index", "piece", "device"}, else None.
        argument: the argument of the call it is about: {"field", "entry", "reason", "missing"}, else None.
    """

    code = "error"

    def __init__(self, message, stage=None, argument=None):
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.argument = argument


class UsageError(Error, ValueError):
    """Something that cannot be done as asked: a bad option value, an unknown name, inputs that do not match."""
    code = "usage"


class InvalidModelError(Error):
    """A model or plan that is not what it claims (not ONNX, truncated, a plan.json that does not validate)."""
    code = "invalid_model"


class InvalidDataError(Error):
    """A tensor file or other data given that cannot be read as what it claims."""
    code = "invalid_data"


class IoError(Error, OSError):
    """A file or directory that cannot be read, written, created or replaced."""
    code = "io"


class OrtError(Error, RuntimeError):
    """ONNX Runtime or the device failed while loading or running."""
    code = "runtime"


class VerifyMismatch(Error):
    """The pieces (or the modes of a bench) do not reproduce the model within the tolerances."""
    code = "verify_mismatch"


class CancelledError(Error):
    """The request was dropped because its pipeline shut down (closed, or interrupted by Ctrl-C)."""
    code = "cancelled"


class DoesNotFitError(Error, MemoryError):
    """The pieces need more memory than the devices can give: no partition fits, or a plan does not fit them."""
    code = "does_not_fit"


class InternalError(Error):
    """An invariant of onnxpipe broke: a bug."""
    code = "internal"


ERRORS = {cls.code: cls for cls in (UsageError, InvalidModelError, InvalidDataError, IoError, OrtError,
                                     VerifyMismatch, CancelledError, DoesNotFitError, InternalError)}


def make_error(code, message, stage=None, argument=None):
    """The exception of a C++ onnxpipe::Error (called by the extension)."""
    return ERRORS.get(code, Error)(message, stage, argument)
