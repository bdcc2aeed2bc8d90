#!/bin/sh
# /init of the fixture initramfs (busybox-static, arm64).
# Makes devices do DMA through the SMMUv3, then prints SMMUDBG-DONE and idles
# so the host can stop the VM and snapshot it with every DMA mapping that is
# still live (virtqueues, posted RX buffers) in place.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "SMMUDBG: init start"
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover net_failover virtio_net; do
    insmod /lib/modules/$m.ko || echo "SMMUDBG: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
echo "SMMUDBG: iommu groups:"; ls /sys/kernel/iommu_groups/ 2>&1
for d in /sys/bus/pci/devices/*; do
    echo "SMMUDBG: pci $(basename $d) $(cat $d/vendor):$(cat $d/device) group=$(basename $(readlink $d/iommu_group) 2>/dev/null)"
done
# DMA device->memory: read the whole disk (page cache bypassed where possible).
dd if=/dev/vda of=/dev/null bs=64k iflag=direct 2>&1 || dd if=/dev/vda of=/dev/null bs=64k
echo 3 > /proc/sys/vm/drop_caches
md5sum /dev/vda
# DMA memory->device: write one block back.
dd if=/dev/vda of=/dev/vda bs=4k count=1 seek=1 conv=notrunc,fsync 2>&1
sync
# virtio-net: link up posts RX buffers (they stay mapped); ARP/ICMP with slirp's gateway.
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ping -c 2 -W 2 10.0.2.2
cat /proc/interrupts | grep -i -E "smmu|virtio|evtq|gerror|cmdq" 
sleep 1
echo "SMMUDBG-DONE"
while true; do sleep 3600; done
