import sys

import matgrad


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    sys.exit("plugin gave up in its hook")
