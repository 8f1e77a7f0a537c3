"""The CGI side: what lighttpd runs for /api/ (standard library only, as a Pi's python3 has it).

- :mod:`ledd.web.api`: the HTTP API, one request per CGI start (``cgi-bin/api.py``);
- :mod:`ledd.web.events`: the event stream, one ledd watcher per browser (``cgi-bin/events.py``);
- :mod:`ledd.web.hosts`: which ``Host`` names are this machine's (DNS rebinding), also run by
  lighttpd.conf at start.

Empty on purpose: a CGI start loads only the module it runs.
"""
