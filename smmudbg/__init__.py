"""smmudbg: a terminal debugger and REPL for nested Arm SMMUv3 / iommufd state."""
__version__ = "0.1.0"
