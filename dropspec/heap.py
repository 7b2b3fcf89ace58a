"""Keep freed memory in the process, so a case's arrays are not faulted in page by page over and over.

glibc's malloc serves a block above its mmap threshold with a fresh mapping of the system's, and gives the top
of its heap back to the system once more than its trim threshold lies free there. Both thresholds start small
(128 KiB) and glibc raises them as large blocks are freed, but not far enough for recovery: it makes thousands of
temporary arrays of 0.1 to 2 MB, each alive for one numpy operation, and every fresh page of one costs a page
fault. In a torch matrix run, `lstm-L2-dropout0.25+rate_tiny` took 4,800 minor faults and about 6 ms of its
30 ms of dropspec's own time for them (``getrusage``); with these settings it took 900 and 25 ms.

The heap still grows the first time a case needs more than any before it, and that case paid for the faults:
torchnlp `lstm-torchnlp-WeightDrop`, the first with (T, B, G*H, H) weight readings, took 59 ms of own time where
it takes 36. So the worker also faults in ``RESERVE`` (128 MiB) of heap when it starts, which is no case's time.

The worker process that observes cases sets all this once (``worker._serve``). The heap then holds at most
``TRIM_THRESHOLD`` of free memory at its top, and at least the reserve. Elsewhere than glibc, or where the user set
glibc's own ``MALLOC_*`` variables, nothing changes.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 64 << 20  # blocks below this come from the heap, whose pages stay mapped
TRIM_THRESHOLD = 256 << 20  # the free memory the heap keeps at its top before it shrinks
RESERVE, RESERVE_BLOCK = 128 << 20, 32 << 20  # blocks below the mmap threshold: they come from the heap
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process; whether they were set."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return False
    # the heap the cases will use, faulted in now (the worker's start is no case's time): blocks below the mmap
    # threshold come from the heap, and freed they stay there, below the trim threshold
    blocks = [bytearray(RESERVE_BLOCK) for _ in range(RESERVE // RESERVE_BLOCK)]
    for block in blocks:
        block[:: mmap.PAGESIZE] = bytes(len(range(0, RESERVE_BLOCK, mmap.PAGESIZE)))
    del blocks, block
    return True


def no_huge_page_advice() -> bool:
    """Stop numpy's request for transparent huge pages (madvise) on every array of 4 MiB or more; whether it was
    stopped here. Where the kernel defragments on such a fault (``defrag`` is ``madvise``, as on this project's
    machines), a fault can stall for memory compaction: torch-based weight-drop cases, whose weight readings are
    arrays of 8-16 MB, varied from 37 to 79 ms of own time over five runs of fastai's `lstm-fastai-WeightDropout`
    with the advice, and took 43-45 ms without. A user's ``NUMPY_MADVISE_HUGEPAGE`` (numpy's own switch, read when
    numpy is imported) is kept."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    from numpy._core import multiarray  # the setter behind NUMPY_MADVISE_HUGEPAGE; private, so looked up with care

    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:
        return False
    setter(False)
    return True
