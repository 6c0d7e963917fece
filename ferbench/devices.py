"""Devices: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``, checked before any work starts.

``parse_device`` checks the spelling only (recipes and the command line use it); ``resolve_device``
also checks that torch can use the device here and turns ``auto`` into the best available one
(CUDA, then Apple's MPS, then the CPU). ``cuda`` stays ``cuda`` so that under torchrun each rank
picks its own GPU (``LOCAL_RANK``). Both raise one ``DeviceError`` line that says what to use instead.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FerbenchError

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: the spelling ``parse_device`` accepts (the JSON schema of recipes uses it too)
PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"


class DeviceError(FerbenchError):
    """A device that is misspelt or not available here."""


def parse_device(text: str) -> str:
    """The device ``text`` names, normalised (``CUDA:0`` -> ``cuda:0``); one-line error if it is none of DEVICES."""
    value = str(text).strip().lower()
    if not re.match(PATTERN, value):
        raise DeviceError(f"unknown device {text!r}: use one of {', '.join(DEVICES)} (e.g. cuda:1)")
    return value


def resolve_device(text: str) -> str:
    """The device to run on: ``parse_device`` plus an availability check; ``auto`` picks cuda, mps or cpu."""
    import torch

    value = parse_device(text)
    cuda, mps = torch.cuda.is_available(), _mps_available(torch)
    if value == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if value.startswith("cuda"):
        if not cuda:
            why = "this torch is built without CUDA" if torch.version.cuda is None else "torch sees no CUDA GPU"
            raise DeviceError(f"device {value} is not available ({why}); use --device cpu or --device auto")
        index = int(value.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"device {value} is not available: torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if value == "mps" and not mps:
        raise DeviceError("device mps is not available (Apple-silicon GPUs with an MPS build of torch only); "
                          "use --device cpu or --device auto")
    return value


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def synchronize(device: Any) -> None:
    """Wait for the work queued on a CUDA device (nothing to wait for elsewhere), e.g. before
    reading a clock."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
