"""The floor of a scan, on its own so that a fresh interpreter can import it without the benchmark's tools."""

import os


def floor() -> None:
    """The least any scan can do here: list /proc and readlink every process's executable once."""
    proc_fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in os.listdir(proc_fd):
            if name.isdigit():
                try:  # noqa: SIM105 - the floor is the tightest loop: contextlib.suppress costs more
                    os.readlink(name + '/exe', dir_fd=proc_fd)
                except OSError:
                    pass
    finally:
        os.close(proc_fd)
