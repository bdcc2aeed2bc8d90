"""The arrays of a batch translation, checked once for both walkers (SMMUv3 and VT-d)."""
import numpy as np


def batch_inputs(sids, addrs, ids, access, ids_name):
    """(sids uint32, addrs uint64, ids int64 (-1: none; all -1 when ids is None), access uint8
    (0 read, 1 write, 2 exec; all reads when None)) as contiguous arrays of one length."""
    s = np.ascontiguousarray(sids, dtype=np.uint32)
    a = np.ascontiguousarray(addrs, dtype=np.uint64)
    n = s.shape[0]
    if a.shape[0] != n:
        raise ValueError("sids and addrs differ in length")
    i = np.full(n, -1, dtype=np.int64) if ids is None else \
        np.ascontiguousarray(ids, dtype=np.int64)
    c = np.zeros(n, dtype=np.uint8) if access is None else \
        np.ascontiguousarray(access, dtype=np.uint8)
    if i.shape[0] != n or c.shape[0] != n:
        raise ValueError(f"{ids_name} and access must match sids in length")
    return s, a, i, c
