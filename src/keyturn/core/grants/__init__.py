"""The grants of the token endpoint (RFC 6749 §4.1.3, §4.4.2, §6)."""
