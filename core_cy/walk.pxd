# The Python face of the translation core: class Walker over one SMMU's configuration layer
# (core_cy.smmuv3), the VMSAv8-64 walk (core_cy.vmsa) and the caches (core_cy.caches).
from core_cy.physmem cimport PhysMem
from core_cy.wtypes cimport TraceStep
from core_cy.smmuv3 cimport WalkCtx

cdef class Walker:
    cdef WalkCtx ctx
    cdef PhysMem mem
    cdef TraceStep* trace_buf
    cdef list _strtab
    cdef object _space        # the AddressSpace tables are read from (None: mem)
    cdef list _steps(self)
    cdef _set_space(self, space)
