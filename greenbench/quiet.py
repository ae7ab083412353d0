"""Silence import-time chatter from optional libraries in greenbench's own processes.

torchao (imported by transformers when installed) logs a warning for every CUDA kernel library
it cannot load on a CPU-only machine, and torch warns about its pytree registrations; neither is
about the user's run.
"""

from __future__ import annotations

import logging

NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_library_logs() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
