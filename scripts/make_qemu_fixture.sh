#!/bin/bash
# Regenerate tests/fixtures/qemu/ from Debian packages alone.
#
#   scripts/make_qemu_fixture.sh            # everything (needs root for apt-get)
#   WORK=/some/dir scripts/make_qemu_fixture.sh
#   SKIP_BOOT=1 scripts/make_qemu_fixture.sh   # only re-run the fixture builder on $WORK/run
#   ITS=1 scripts/make_qemu_fixture.sh      # the GICv3 + ITS fixture: tests/fixtures/qemu_its
#
# ITS=1 boots the same guest with -M virt,iommu=smmuv3,gic-version=3 and -smp 2, so the
# devices' MSIs go through the SMMU to the ITS (Linux's doorbell IOVA in the software-MSI
# window, translated to GITS_TRANSLATER 0x08090040) and are spread over two CPUs; it also
# records every gicv3_its* trace event and reads the GITS_* and GICR_*[n] registers with xp.
# Its run directory is $WORK/run-its; the plain fixture (GICv2, no ITS) is left as it is.
#
# Downloads and work files go to $WORK (default /work/qemu-work), never into the repo.
# Steps:
#   1. apt: qemu-system-arm (qemu-system-aarch64, host arch), and for arm64 the
#      kernel that linux-image-arm64 points at plus busybox-static; extracted with dpkg-deb -x.
#   2. initramfs: busybox + the virtio modules + scripts/qemu_fixture/init.sh as /init
#      (cpio written by scripts/qemu_fixture/mkcpio.py).
#   3. boot: -M virt,iommu=smmuv3 with virtio-blk-pci and virtio-net-pci behind the SMMU
#      (iommu_platform=on,disable-legacy=on), smmu* trace events to a file; when the guest
#      prints SMMUDBG-DONE: QMP stop, read SMMU registers (xp), dump-guest-memory (ELF),
#      pmemsave (raw)  -- scripts/qemu_fixture/run_qemu.py
#   4. fixture: keep only the guest pages the SMMU state needs (stream table, CDs, page
#      tables, queues), write them as a sparse ELF core, xz it, parse the trace into
#      translations.json, write README.md  -- scripts/qemu_fixture/build_fixture.py
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE="$REPO/scripts/qemu_fixture"
WORK=${WORK:-/work/qemu-work}
MEM=${MEM:-256M}
if [ -n "${ITS:-}" ]; then
    OUT=${OUT:-$REPO/tests/fixtures/qemu_its}
    RUN=$WORK/run-its
    BOOT_ARGS="--gic 3 --smp 2"
else
    OUT=${OUT:-$REPO/tests/fixtures/qemu}
    RUN=$WORK/run
    BOOT_ARGS=""
fi
mkdir -p "$WORK"
cd "$WORK"

log() { echo "[make_qemu_fixture] $*" >&2; }

if [ -z "${SKIP_BOOT:-}" ]; then
    # ---- 1. packages -------------------------------------------------------------
    if ! command -v qemu-system-aarch64 >/dev/null; then
        log "installing qemu-system-arm"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-arm
    fi
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt-get update
    fi
    KPKG=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[^:]*\).*/\1/p' | head -1)
    [ -n "$KPKG" ] || { apt-get update; KPKG=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[^:]*\).*/\1/p' | head -1); }
    [ -n "$KPKG" ] || { log "cannot resolve the arm64 kernel package"; exit 1; }
    log "kernel package: $KPKG"
    ls ${KPKG}_*_arm64.deb >/dev/null 2>&1 || apt-get download "$KPKG:arm64"
    ls busybox-static_*_arm64.deb >/dev/null 2>&1 || apt-get download busybox-static:arm64
    KDEB=$(ls ${KPKG}_*_arm64.deb | head -1)
    BDEB=$(ls busybox-static_*_arm64.deb | head -1)
    rm -rf kpkg bbpkg && mkdir kpkg bbpkg
    dpkg-deb -x "$KDEB" kpkg
    dpkg-deb -x "$BDEB" bbpkg
    KVER=$(ls kpkg/lib/modules | head -1)
    VMLINUZ=$WORK/kpkg/boot/vmlinuz-$KVER
    cat > packages.json <<JSON
{"kernel_package": "$KPKG", "kernel_deb": "$(basename "$KDEB")", "kernel_version": "$(dpkg-deb -f "$KDEB" Version)",
 "kernel_release": "$KVER", "busybox_deb": "$(basename "$BDEB")", "busybox_version": "$(dpkg-deb -f "$BDEB" Version)",
 "qemu_package_version": "$(dpkg-query -W -f '${Version}' qemu-system-arm)"}
JSON

    # ---- 2. initramfs --------------------------------------------------------------
    rm -rf initramfs && mkdir -p initramfs/{bin,proc,sys,dev,tmp,lib/modules}
    cp bbpkg/bin/busybox initramfs/bin/busybox
    for app in sh mount insmod ls cat dd md5sum sync ip ping sleep echo grep basename readlink; do
        ln -s busybox "initramfs/bin/$app"
    done
    MODDIR=kpkg/lib/modules/$KVER/kernel
    for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover net_failover virtio_net; do
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
    python3 "$HERE/mkcpio.py" initramfs initrd.cpio

    # ---- 3. disk + boot ------------------------------------------------------------
    # 256 KiB raw disk with a recognisable pattern (block n starts with "SMMUDBG BLOCK n")
    python3 - <<'PY'
with open("disk.raw", "wb") as f:
    for n in range(64):
        blk = (b"SMMUDBG BLOCK %d " % n).ljust(4096, bytes([n]))
        f.write(blk)
PY
    python3 "$HERE/run_qemu.py" --kernel "$VMLINUZ" --initrd "$WORK/initrd.cpio" \
        --disk "$WORK/disk.raw" --outdir "$RUN" --mem "$MEM" $BOOT_ARGS
fi

# ---- 4. fixture ------------------------------------------------------------------
python3 "$HERE/build_fixture.py" --run "$RUN" --packages "$WORK/packages.json" --out "$OUT"
log "fixture written to $OUT"
ls -l "$OUT"
