"""The error an iommufd ioctl returns: a negative errno, named as the kernel returns it.

Every raise names the kernel function whose check it models (drivers/iommu/iommufd/*.c and
drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-iommufd.c), so a user can read why.
"""
from __future__ import annotations

import errno as _errno

from ...errors import ModelError


class IommufdError(ModelError):
    """An ioctl that failed: `errno` (positive, as errno.EINVAL), `op` the ioctl, `why` the
    check that failed and `source` the kernel function that makes it."""

    def __init__(self, err: int, op: str, why: str, source: str):
        self.errno = err
        self.errname = _errno.errorcode[err]
        self.op = op
        self.why = why
        self.source = source
        super().__init__(f"{op}: -{self.errname}: {why} (Linux {source})")


def fail(err: int, op: str, why: str, source: str):
    raise IommufdError(err, op, why, source)
