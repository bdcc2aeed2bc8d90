#!/bin/sh
# /init of the attach fixture (busybox-static, arm64): a guest that keeps its SMMU busy.
# virtio-blk (00:01.0, StreamID 0x8, alone in its IOMMU group) keeps doing DMA, and every
# few seconds is moved between its DMA domain (STE Config=S1 translate) and the identity
# domain (STE Config=bypass): unbind the driver, write the group's sysfs `type`, bind again.
# Linux writes the new STE and announces it with CMD_CFGI_STE, which is what the host's
# `smmudbg watch` sees. The console gets one SMMUDBG-* line per step.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    insmod /lib/modules/$m.ko || echo "SMMUDBG: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
BDF=0000:00:01.0
DEV=/sys/bus/pci/devices/$BDF
GRP=$(basename "$(readlink $DEV/iommu_group)")
echo "SMMUDBG: blk $BDF group $GRP type $(cat /sys/kernel/iommu_groups/$GRP/type)"
dma() { dd if=/dev/vda of=/dev/null bs=64k iflag=direct 2>/dev/null; }
switch() {
    echo $BDF > /sys/bus/pci/drivers/virtio-pci/unbind
    echo "$1" > /sys/kernel/iommu_groups/$GRP/type || echo "SMMUDBG: type $1 refused"
    echo $BDF > /sys/bus/pci/drivers/virtio-pci/bind
    j=0
    while [ ! -b /dev/vda ] && [ $j -lt 50 ]; do sleep 0.1; j=$((j+1)); done
    echo "SMMUDBG-TYPE $(cat /sys/kernel/iommu_groups/$GRP/type)"
}
dma
echo "SMMUDBG-READY"
n=0
while true; do
    n=$((n+1))
    for k in 1 2 3; do dma; sleep 0.3; done
    if [ $((n % 2)) = 1 ]; then switch identity; else switch DMA; fi
done
