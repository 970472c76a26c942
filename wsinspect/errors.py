"""The one exception family: whole-job failures, never wire data."""


class WsinspectError(Exception):
    """A failure of the whole job (unreadable file, not a capture, no permission).

    cli.py turns it into one line on stderr and a non-zero exit status. Malformed
    wire data never raises: it becomes an Issue on the frame, message or session.
    """

    exit_status = 1


class CaptureError(WsinspectError):
    """The capture file or device cannot be read at all."""
