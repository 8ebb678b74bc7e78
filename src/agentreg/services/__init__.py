"""Use cases. Each opens its own transaction and writes its audit event in it; no network I/O inside."""
