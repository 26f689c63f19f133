"""Machine facts printed with every benchmark."""

from __future__ import annotations

import os
import platform
import sys


def machine() -> str:
    """One markdown line naming the machine, the interpreter and the CPU count."""
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.release()} ({cpu}), {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
