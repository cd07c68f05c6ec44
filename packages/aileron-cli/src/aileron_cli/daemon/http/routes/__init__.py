"""The daemon's HTTP routes, one module per resource (SPEC §5.3); each route takes the
services it uses through ``aileron_cli.daemon.http.deps``."""
