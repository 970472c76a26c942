"""wsinspect: a WebSocket traffic inspector for captures and live interfaces."""

__version__ = "0.1.0"
