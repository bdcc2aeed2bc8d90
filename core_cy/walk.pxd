# The Python face of the translation core: class Walker over one SMMU's configuration layer
# (core_cy.smmuv3), the VMSAv8-64 walk (core_cy.vmsa) and the caches (core_cy.caches).
from core_cy.physmem cimport PhysMem
from core_cy.wtypes cimport TraceStep
from core_cy.smmuv3 cimport WalkCtx
from core_cy.smmucfg cimport SteCfg, Fault
from libc.stdint cimport uint32_t

cdef class Walker:
    cdef WalkCtx ctx
    cdef PhysMem mem
    cdef TraceStep* trace_buf
    cdef list _strtab
    cdef object _space        # the AddressSpace tables are read from (None: mem)
    cdef list _steps(self)
    cdef _set_space(self, space)
    cdef int _begin_read(self) except -1
    cdef int _end_read(self) except -1
    cdef dict _ste(self, uint32_t sid, SteCfg* cfg, Fault* f)
    cdef int _cd_ssid(self, uint32_t sid, ssid, SteCfg* ste, Fault* f, uint32_t* use) except -2
