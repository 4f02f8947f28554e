"""Lists the backends while being imported (during discovery)."""

import matgrad

matgrad.list_backends()
