"""The one exception tree of steme_lake.

Every error the package raises on purpose is a ``StemeLakeError``; the branch
says which layer refused, and the message says what was wrong and how to fix
it::

    StemeLakeError
    ├── ValidationError            bad input (also a ValueError)
    │   ├── UnknownRecordError     an id that names no record (also a KeyError)
    │   ├── OutOfOrderError        a time earlier than the last commit
    │   ├── SignatureError         a signature that does not verify
    │   └── EventImportError       a bad line in an event file (.line)
    ├── WalError                   the write-ahead log
    │   ├── WalCorruptError        a bad frame that is not crash residue (.path, .offset)
    │   ├── WalFailedError         a write or fsync failed; the writer stopped
    │   └── FrameTooLargeError     one commit larger than the frame limit
    ├── StorageError               the columnar files and manifests
    │   └── StorageCorruptError    a file whose checksum disagrees (.path)
    ├── LakeClosedError            use after close()
    ├── InternalError              an unexpected failure confined to one request (a bug)
    ├── KeyStoreError              an agent wallet or the agent registry refused
    ├── AuthError                  a request's identity was refused (.status 401/403)
    ├── ApiError                   the HTTP API answered with an error (.status)
    ├── ServerConnectionError      no answer from the server (.sent; also a ConnectionError)
    ├── EngineError                a distributed engine (Ray) could not run a batch job
    └── MissingExtraError          an optional part is not installed (also an ImportError)

Foreign errors (``OSError``, ``pyarrow.ArrowInvalid``, ...) are mapped at the
boundary with ``raise X(...) from exc``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AuthError",
    "EngineError",
    "KeyStoreError",
    "EventImportError",
    "FrameTooLargeError",
    "InternalError",
    "LakeClosedError",
    "MissingExtraError",
    "OutOfOrderError",
    "ReadOnlyError",
    "ServerConnectionError",
    "SignatureError",
    "StemeLakeError",
    "StorageCorruptError",
    "StorageError",
    "UnknownRecordError",
    "ValidationError",
    "WalCorruptError",
    "WalError",
    "WalFailedError",
]


class StemeLakeError(Exception):
    """Root of every error steme_lake raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as they are (message and attributes), whatever the constructor
        # takes: an error raised in a Ray task reaches the driver as itself.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[StemeLakeError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ValidationError(StemeLakeError, ValueError):
    """The input was refused; the message says what to change."""


class UnknownRecordError(ValidationError, KeyError):
    """An id names no record in the lake."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class OutOfOrderError(ValidationError):
    """A write's ``at=`` time is earlier than the last committed record's."""


class SignatureError(ValidationError):
    """A signature does not verify for the record it is attached to."""


class EventImportError(ValidationError):
    """A line of an event file is invalid; nothing from the file was applied."""

    def __init__(self, message: str, *, line: int | None = None, path: str | None = None) -> None:
        where = f"{path or '<events>'}:{line}: " if line is not None else ""
        super().__init__(f"{where}{message}")
        self.line = line
        self.path = path


class WalError(StemeLakeError):
    """The write-ahead log refused or failed."""


class WalCorruptError(WalError):
    """A bad frame in the middle of the log: real corruption, never skipped."""

    def __init__(self, message: str, *, path: str, offset: int) -> None:
        super().__init__(f"{message} (file {path}, byte offset {offset})")
        self.path = path
        self.offset = offset


class WalFailedError(WalError):
    """A write or fsync failed. The writer stopped; reopen the lake to recover."""


class FrameTooLargeError(WalError, ValidationError):
    """One commit encodes to more than the maximum frame size."""


class StorageError(StemeLakeError):
    """The columnar files or the manifest are unusable."""


class StorageCorruptError(StorageError):
    """A columnar file's bytes do not match the checksum in the manifest."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{message} (file {path})")
        self.path = path


class ReadOnlyError(StemeLakeError):
    """A write to a lake opened read-only (``read_only=True``: no WAL here)."""


class LakeClosedError(StemeLakeError):
    """The lake was closed; open it again with ``steme_lake.open``."""


class InternalError(StemeLakeError):
    """An unexpected failure (a bug) while handling one request or transaction.

    It is confined to that request: nothing of it was written, and the other
    requests of its batch or group are answered and committed as usual. The
    original exception is chained (``__cause__``) and logged by the servers.
    """

    @classmethod
    def wrap(cls, exc: BaseException, what: str = "this write") -> InternalError:
        error = cls(
            f"unexpected {type(exc).__name__} while handling {what}: {exc}; nothing of it "
            "was written (the others were not affected); please report it"
        )
        error.__cause__ = exc
        return error


class KeyStoreError(StemeLakeError):
    """An agent wallet or the agent registry refused: wrong passphrase, unknown agent, ..."""


class AuthError(StemeLakeError):
    """A request's identity was refused: 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class ApiError(StemeLakeError):
    """The HTTP API answered with an error that has no closer match (``.status``)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class ServerConnectionError(StemeLakeError, ConnectionError):
    """No answer from the server: it could not be reached (``.sent`` False: the
    request never left), or the connection broke or timed out before the answer
    (``.sent`` True: a write may or may not have been committed)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class EngineError(StemeLakeError):
    """A batch job's engine failed: the cluster could not be reached, or a task
    failed for a reason other than the job's own input (a worker that died after
    its retries). Nothing was stored."""


class MissingExtraError(StemeLakeError, ImportError):
    """An optional part of steme_lake needs an extra that is not installed."""
