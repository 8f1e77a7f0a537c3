"""ledd: the Python side of the LED dashboard.

Shared by the CGI scripts (``cgi-bin/``), the ``ledctl`` command and the tests.
Only the standard library is imported here, because every CGI request pays for
every import. :mod:`ledd.client` speaks ledd's FIFO protocol (docs/protocol.md).
"""

__version__ = "0.1.0"
