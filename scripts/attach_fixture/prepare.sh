#!/bin/bash
# Build what the attach fixture boots, from Debian packages alone (like make_qemu_fixture.sh):
# the arm64 kernel that linux-image-arm64 points at, busybox-static, and an initramfs whose
# /init is scripts/attach_fixture/init.sh.
#
#   scripts/attach_fixture/prepare.sh    # work dir: $SMMUDBG_ATTACH_WORK or ~/.cache/smmudbg/attach-work
#
# Writes $WORK/vmlinuz, $WORK/initrd.cpio and $WORK/disk.raw; nothing goes into the repo.
# Needs apt-get (root) the first time; afterwards it only rebuilds the initramfs.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$REPO/scripts/attach_fixture"
WORK=${SMMUDBG_ATTACH_WORK:-$HOME/.cache/smmudbg/attach-work}
mkdir -p "$WORK"
cd "$WORK"
log() { echo "[attach_fixture] $*" >&2; }

if ! command -v qemu-system-aarch64 >/dev/null; then
    log "installing qemu-system-arm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm
fi
if ! ls linux-image-*_arm64.deb >/dev/null 2>&1 || ! ls busybox-static_*_arm64.deb >/dev/null 2>&1; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    apt-get update -qq
    KPKG=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[^:]*\).*/\1/p' | head -1)
    [ -n "$KPKG" ] || { log "cannot resolve the arm64 kernel package"; exit 1; }
    log "kernel package: $KPKG"
    apt-get download "$KPKG:arm64" busybox-static:arm64
fi
KDEB=$(ls linux-image-*_arm64.deb | head -1)
BDEB=$(ls busybox-static_*_arm64.deb | head -1)
if [ ! -d kpkg ] || [ ! -d bbpkg ]; then
    rm -rf kpkg bbpkg && mkdir kpkg bbpkg
    dpkg-deb -x "$KDEB" kpkg
    dpkg-deb -x "$BDEB" bbpkg
fi
KVER=$(ls kpkg/lib/modules | head -1)
cp "kpkg/boot/vmlinuz-$KVER" vmlinuz

rm -rf initramfs && mkdir -p initramfs/{bin,proc,sys,dev,tmp,lib/modules}
cp bbpkg/bin/busybox initramfs/bin/busybox
for app in sh mount insmod ls cat dd sleep echo basename readlink; do
    ln -s busybox "initramfs/bin/$app"
done
MODDIR=kpkg/lib/modules/$KVER/kernel
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    f=$(find "$MODDIR" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
    [ -n "$f" ] || { log "module $m not found in $KDEB"; exit 1; }
    case "$f" in
        *.xz) xz -dc "$f" > "initramfs/lib/modules/$m.ko" ;;
        *.zst) zstd -dc "$f" > "initramfs/lib/modules/$m.ko" ;;
        *) cp "$f" "initramfs/lib/modules/$m.ko" ;;
    esac
done
cp "$HERE/init.sh" initramfs/init
chmod 755 initramfs/init
python3 "$REPO/scripts/qemu_fixture/mkcpio.py" initramfs initrd.cpio
[ -f disk.raw ] || python3 -c "open('disk.raw','wb').write(bytes(range(256))*1024)"
echo "$KDEB $KVER" > kernel.txt
log "ready: $WORK/vmlinuz $WORK/initrd.cpio ($KVER)"
