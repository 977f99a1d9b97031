"""Datetimes as protobuf Timestamps, for the client and the Recorder alike."""

import datetime

from google.protobuf import timestamp_pb2


def timestamp(value: datetime.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A datetime (aware, or naive meaning UTC) as a Timestamp; None stays unset."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out
