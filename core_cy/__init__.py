"""smmudbg's Cython core: modeled physical memory, the SMMUv3 walker, table builder, caches."""
