"""The errors every ledd client raises, and what each one means over HTTP.

A leaf module: it imports nothing, so the FIFO client (and through it the CGI
scripts, which pay for every import on every request), the HTTP client, the
web API and ledctl can all share it without pulling each other in.

- :class:`LeddError` and its kinds are what :class:`ledd.client.Client` and
  :class:`ledd.remote.RemoteClient` raise; ``err.code`` is ledd's own code
  (docs/protocol.md) whichever of the two raised it.
- :data:`DAEMON_ERRORS` is the one table of those codes as the web API's codes
  and HTTP statuses (docs/api.md); :data:`DAEMON_CODE_OF_API_CODE` reads it
  backwards for the HTTP client.
"""

__all__ = ["LeddError", "DaemonDown", "DaemonTimeout", "CommandError", "RemoteError",
           "DAEMON_ERRORS", "DAEMON_CODE_OF_API_CODE"]


class LeddError(Exception):
    """Base of every error a ledd client raises; carries a machine code (docs/protocol.md).

    What each code means over HTTP is :data:`DAEMON_ERRORS`.
    """

    code = "internal"

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code


class DaemonDown(LeddError):
    """ledd is not running (no reader on the command FIFO) or stopped mid-exchange."""

    code = "daemon_down"


class DaemonTimeout(LeddError):
    """ledd did not answer before the deadline."""

    code = "timeout"


class CommandError(LeddError):
    """ledd answered ``ERR <code> <message>``."""

    def __init__(self, message, code="internal"):
        super().__init__(message, code)


class RemoteError(LeddError):
    """The dashboard answered something the API does not (401, a proxy's error page, ...)."""


#: The one table of every error ledd (docs/protocol.md) or its client can report:
#: daemon code -> (API code, HTTP status). Where several daemon codes share an API
#: code, the first one listed is the one the HTTP client maps back to.
DAEMON_ERRORS = {
    "badarg": ("bad_value", 400),
    "badrequest": ("bad_value", 400),
    "badverb": ("bad_value", 400),
    "notfound": ("not_found", 404),
    "notsupported": ("not_supported", 409),
    "gpio": ("gpio", 500),
    "internal": ("internal", 500),
    "busy": ("busy", 503),
    "daemon_down": ("daemon_down", 503),  # the client's own: no reader on ledd's FIFOs
    "timeout": ("timeout", 504),  # the client's own: ledd did not answer in time
}

#: The API's error codes that name a daemon error, read backwards from :data:`DAEMON_ERRORS`
#: (the first daemon code listed wins): scripts see the same ``err.code`` whether they use
#: Client or RemoteClient. API-only codes (bad_json, ...) are not here and stay as they are.
DAEMON_CODE_OF_API_CODE = {}
for _daemon_code, (_api_code, _status) in DAEMON_ERRORS.items():
    DAEMON_CODE_OF_API_CODE.setdefault(_api_code, _daemon_code)
del _daemon_code, _api_code, _status
