"""Keyturn: the authorization layer of an API platform."""

__version__ = "0.1.0"
