"""Domain errors: what went wrong, in terms the domain knows.

The domain raises these; the gRPC layer maps each class to one status code in
one place (interceptors.py). A `reason` is a stable machine-readable string
that rides in the status details; `field` names the request field at fault.
"""


class DomainError(Exception):
    """Base of every error the domain reports to callers."""

    reason = "ERROR"

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if reason:
            self.reason = reason


class InvalidArgument(DomainError):
    """The request itself is wrong."""

    reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    """The thing named does not exist (or belongs to another account)."""

    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """The thing to create exists already, different from what was asked."""

    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The stored state forbids the request."""

    reason = "FAILED_PRECONDITION"


class Unauthenticated(DomainError):
    """No valid API key."""

    reason = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """A size or count limit was exceeded."""

    reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A transient failure (the database, contention): try again."""

    reason = "UNAVAILABLE"
