from mgtest_textbook import TextbookBackend

import matgrad


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return TextbookBackend()  # calls itself "textbook", entry point says "misnamed"
