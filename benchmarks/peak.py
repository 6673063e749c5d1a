"""`python -m benchmarks.peak OUT MODULE ARGS...`: run MODULE as `python -m MODULE ARGS...` would, then
write this process's peak resident memory (VmHWM, in KiB) to the file OUT.

VmHWM belongs to the process's own address space. The ru_maxrss a parent gets from `wait4` does not:
Linux carries the parent's peak into it when the child is forked and exec'd, so a benchmark that has
loaded torch and data would see its own peak in every child's figure.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def peak_rss_kib() -> int:
    with open("/proc/self/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("VmHWM:")))


def main() -> None:
    out, module, *args = sys.argv[1:]
    atexit.register(lambda: Path(out).write_text(str(peak_rss_kib())))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
