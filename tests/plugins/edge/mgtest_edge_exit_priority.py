import sys

from mgtest_edge_base import EdgeBackend

import matgrad


class ExitPriority(EdgeBackend):
    name = "exit_priority"

    @property  # type: ignore[override]
    def priority(self) -> int:
        sys.exit("plugin gave up reading its priority")


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return ExitPriority()
