"""Test support that is not a fixture: the fake Kubernetes API server and its example objects."""
