import matgrad


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    matgrad.list_backends()
    raise AssertionError("list_backends() returned during discovery")
