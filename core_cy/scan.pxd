# Whole-tree scans of VMSAv8-64 translation tables: leaf permissions as the walker grants them,
# and the reverse lookup (which inputs map an output range) for `find`.
from libc.stdint cimport uint64_t
from core_cy.physmem cimport MemCore

cdef struct Geo:          # one translation table tree
    int stage
    int g                 # granule shift 12/14/16
    int start             # start level
    int ia                # input address bits
    uint64_t root         # root table (an IPA when the tree is read through stage 2)
    bint el2, pan, wxn, had, xnx   # permission context (CD/STE fields, SMMU_IDR3.XNX)

cdef struct Target:       # an output range the scan looks for: [lo, hi) -> final address of lo
    uint64_t lo
    uint64_t hi
    uint64_t final

cdef struct Hit:          # inputs [iova, iova+size) -> out (this stage's output), final
    uint64_t iova
    uint64_t size
    uint64_t out
    uint64_t final
    uint64_t desc
    int level
    int perm
