import sys

from mgtest_edge_base import EdgeBackend

import matgrad


class ExitAvailable(EdgeBackend):
    name = "exit_available"

    def available(self) -> tuple[bool, str]:
        sys.exit("plugin gave up in available()")


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return ExitAvailable()
