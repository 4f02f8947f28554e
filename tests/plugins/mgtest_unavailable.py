from mgtest_textbook import TextbookBackend

import matgrad


class Unavailable(TextbookBackend):
    name = "unavailable"

    def available(self) -> tuple[bool, str]:
        return False, "needs a quantum computer"


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return Unavailable()
