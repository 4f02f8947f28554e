"""A module registered as a backend that forgot its hook implementation."""


def matgrad_backend():  # type: ignore[no-untyped-def]  # not marked with hookimpl
    return None
