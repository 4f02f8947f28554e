from matgrad_numpy import NumpyBackend

import matgrad


class ReenterDevice(NumpyBackend):
    name = "reenter_device"
    priority = -1

    @property
    def device(self) -> str:
        return str(len(matgrad.list_backends()))  # would recurse without end


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return ReenterDevice()
