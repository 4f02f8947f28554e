"""Registered under the reserved names 'numpy' and 'auto': must never be imported."""

raise AssertionError("a plugin claiming a reserved backend name was imported")
