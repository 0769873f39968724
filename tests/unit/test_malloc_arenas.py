"""The hub's thread pools share a bounded number of malloc arenas (roots/malloc.py)."""

import subprocess
import sys
import textwrap

import pytest

from roots.malloc import limit_malloc_arenas

# Eight threads allocate at once while the main thread holds memory; then glibc's own report
# (malloc_info) says how many arenas ("heaps") the process has.
COUNT_ARENAS = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from roots.malloc import limit_malloc_arenas
    if sys.argv[1] != "none":
        assert limit_malloc_arenas(int(sys.argv[1]))
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    barrier = threading.Barrier(8)
    def work():
        barrier.wait()
        blocks = [libc.malloc(4096) for _ in range(2000)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    path = tempfile.mktemp()
    f = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(f))
    libc.fclose(ctypes.c_void_p(f))
    print(open(path).read().count("<heap nr="))
    os.unlink(path)
    """
)


def arenas(limit: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", COUNT_ARENAS, limit], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_threads_get_arenas_of_their_own_without_the_limit():
    assert arenas("none") > 2


def test_with_the_limit_all_threads_share_at_most_that_many():
    assert arenas("2") <= 2
    assert arenas("1") == 1


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0)
