#!/bin/sh
# /init of the VT-d fixture initramfs (busybox-static, amd64).
# Makes two virtio devices behind the Intel IOMMU do DMA and raise (remapped) MSI-X
# interrupts, then provokes one DMA fault: the first queue vector of virtio-net gets an MSI-X
# message address outside the interrupt range (IOVA 0x1000, never mapped), so the device's
# next interrupt is a DMA write that the IOMMU blocks and records. Prints SMMUDBG-DONE and
# idles so the host can stop the VM with the live mappings (virtqueues, RX buffers) in place.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "SMMUDBG: init start"
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover net_failover virtio_net; do
    [ -e /lib/modules/$m.ko ] || continue     # built into the kernel
    insmod /lib/modules/$m.ko || echo "SMMUDBG: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
echo "SMMUDBG: iommu groups:"; ls /sys/kernel/iommu_groups/ 2>&1
for d in /sys/bus/pci/devices/*; do
    echo "SMMUDBG: pci $(basename $d) $(cat $d/vendor):$(cat $d/device) group=$(basename $(readlink $d/iommu_group) 2>/dev/null)"
done
dmesg | grep -i -E "DMAR|iommu|remap" | head -40
# DMA device->memory: read the whole disk.
dd if=/dev/vda of=/dev/null bs=64k iflag=direct 2>&1 || dd if=/dev/vda of=/dev/null bs=64k
echo 3 > /proc/sys/vm/drop_caches
md5sum /dev/vda
# DMA memory->device: write one block back.
dd if=/dev/vda of=/dev/vda bs=4k count=1 seek=1 conv=notrunc,fsync 2>&1
sync
# virtio-net: link up posts RX buffers (they stay mapped); ARP/ICMP with slirp's gateway.
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ping -c 2 -W 2 10.0.2.2
cat /proc/interrupts | grep -i -E "virtio|DMAR|IR-" 
rd8() { od -An -tu1 -j $2 -N 1 $1 | tr -d ' '; }
rd16() { od -An -tu2 -j $2 -N 2 $1 | tr -d ' '; }
rd32() { od -An -tu4 -j $2 -N 4 $1 | tr -d ' '; }
# msix BDF: sets TBL (MSI-X table address, from capability 0x11 and its BAR) and NVEC.
msix() {
    cfg=/sys/bus/pci/devices/$1/config
    TBL=""; NVEC=0
    p=$(rd8 $cfg 52)
    while [ -n "$p" ] && [ "$p" != "0" ]; do
        if [ "$(rd8 $cfg $p)" = "17" ]; then
            NVEC=$(( ($(rd16 $cfg $((p + 2))) & 0x7ff) + 1 ))
            t=$(rd32 $cfg $((p + 4)))
            bar=$(sed -n "$(( (t & 7) + 1 ))p" /sys/bus/pci/devices/$1/resource | cut -d' ' -f1)
            TBL=$(( bar + (t & ~7) ))
            return
        fi
        p=$(rd8 $cfg $((p + 1)))
    done
}
# Every virtio device's MSI-X messages as the guest programmed them (the host maps each traced
# interrupt request back to its device by these).
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor)" = "0x1af4" ] || continue
    b=$(basename $d); msix $b
    [ -n "$TBL" ] || continue
    n=0
    while [ $n -lt $NVEC ]; do
        e=$((TBL + 16 * n))
        echo "SMMUDBG: msix $b $n addr=$(devmem $e 32) upper=$(devmem $((e + 4)) 32) data=$(devmem $((e + 8)) 32) ctrl=$(devmem $((e + 12)) 32)"
        n=$((n + 1))
    done
done
# The fault: point virtio-net's MSI-X entry 1 (its first queue's vector) at IOVA 0x1000.
NET=$(basename $(dirname $(readlink -f /sys/class/net/eth0/device)))
msix $NET
if [ -n "$TBL" ]; then
    echo "SMMUDBG: fault: $NET MSI-X entry 1 at $(printf 0x%x $((TBL + 16))): address -> 0x1000"
    devmem $((TBL + 20)) 32 0
    devmem $((TBL + 16)) 32 0x1000
    ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1
    ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1
else
    echo "SMMUDBG: no MSI-X capability on $NET"
fi
dmesg | grep -i -E "DMAR|fault" | tail -5
sleep 1
echo "SMMUDBG-DONE"
while true; do sleep 3600; done
