#!/bin/bash
# Regenerate tests/fixtures/qemu_vtd/ (Intel VT-d: q35 + intel-iommu) from Debian packages alone.
#
#   scripts/make_vtd_fixture.sh                 # everything (root: debootstrap, chroot)
#   CACHE=/some/dir scripts/make_vtd_fixture.sh
#   SKIP_BOOT=1 scripts/make_vtd_fixture.sh     # only re-run the fixture builder on the last run
#
# Steps (downloads and work files stay in $CACHE, default ~/.cache/smmudbg, never in the repo):
#   1. debootstrap --variant=minbase a Debian 13 (trixie) chroot, $CACHE/vtd-chroot, with
#      qemu-system-x86 (QEMU 10.0; its x-scalable-mode / x-flts intel-iommu properties) and
#      busybox-static; in the chroot, apt-get download the kernel that linux-image-amd64
#      points at, extracted with dpkg-deb -x.
#   2. initramfs: busybox + the virtio modules + scripts/vtd_fixture/init.sh as /init
#      (cpio written by scripts/qemu_fixture/mkcpio.py).
#   3. boot (TCG, in the chroot): -M q35 with -device intel-iommu,intremap=on,
#      x-scalable-mode=on,x-flts=on, kernel command line intel_iommu=on,sm_on iommu.strict=1;
#      virtio-blk-pci and virtio-net-pci with iommu_platform=on; vtd_* trace events to a file;
#      when the guest prints SMMUDBG-DONE: QMP stop, the DMAR registers with xp, then
#      dump-guest-memory (ELF)  -- scripts/vtd_fixture/run_qemu.py
#   4. fixture: keep the guest pages the remapping structures need, sparse ELF core, xz;
#      the vtd trace lines (xz); regs.json; README.md  -- scripts/vtd_fixture/build_fixture.py
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE="$REPO/scripts/vtd_fixture"
CACHE=${CACHE:-$HOME/.cache/smmudbg}
CH=$CACHE/vtd-chroot
OUT=${OUT:-$REPO/tests/fixtures/qemu_vtd}
MEM=${MEM:-256M}
W=/work                 # the work directory inside the chroot
WH=$CH$W
log() { echo "[make_vtd_fixture] $*" >&2; }

if [ -z "${SKIP_BOOT:-}" ]; then
    # ---- 1. chroot and packages -----------------------------------------------------
    if [ ! -x "$CH/usr/bin/qemu-system-x86_64" ]; then
        command -v debootstrap >/dev/null || { apt-get update; apt-get install -y --no-install-recommends debootstrap; }
        log "debootstrap trixie into $CH"
        mkdir -p "$CACHE"
        time nice debootstrap --variant=minbase \
            --include=qemu-system-x86,qemu-system-data,seabios,ipxe-qemu,busybox-static \
            trixie "$CH" http://deb.debian.org/debian
    fi
    mkdir -p "$WH"
    cp /etc/resolv.conf "$CH/etc/resolv.conf"
    [ -n "$(ls "$CH/var/lib/apt/lists/" 2>/dev/null | grep _Packages || true)" ] || chroot "$CH" apt-get update
    KPKG=$(chroot "$CH" apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -1)
    [ -n "$KPKG" ] || { log "cannot resolve the amd64 kernel package"; exit 1; }
    log "kernel package: $KPKG"
    ls "$WH"/${KPKG}_*_amd64.deb >/dev/null 2>&1 || chroot "$CH" sh -c "cd $W && apt-get download $KPKG"
    KDEB=$(cd "$WH" && ls ${KPKG}_*_amd64.deb | head -1)
    rm -rf "$WH/kpkg" && mkdir "$WH/kpkg"
    chroot "$CH" dpkg-deb -x "$W/$KDEB" "$W/kpkg"
    # trixie is merged-/usr: the modules are under usr/lib/modules
    KMOD=$WH/kpkg/usr/lib/modules; [ -d "$KMOD" ] || KMOD=$WH/kpkg/lib/modules
    KVER=$(ls "$KMOD" | head -1)
    cat > "$WH/packages.json" <<JSON
{"kernel_package": "$KPKG", "kernel_deb": "$KDEB", "kernel_version": "$(chroot "$CH" dpkg-deb -f "$W/$KDEB" Version)",
 "kernel_release": "$KVER",
 "busybox_version": "$(chroot "$CH" dpkg-query -W -f '${Version}' busybox-static)",
 "qemu_package_version": "$(chroot "$CH" dpkg-query -W -f '${Version}' qemu-system-x86)",
 "seabios_version": "$(chroot "$CH" dpkg-query -W -f '${Version}' seabios)",
 "debian": "trixie $(cat "$CH/etc/debian_version")"}
JSON

    # ---- 2. initramfs ------------------------------------------------------------------
    IR=$WH/initramfs
    rm -rf "$IR" && mkdir -p "$IR"/{bin,proc,sys,dev,tmp,lib/modules}
    cp "$CH/bin/busybox" "$IR/bin/busybox"
    for app in sh mount insmod ls cat dd md5sum sync ip ping sleep echo grep basename readlink \
               od tr cut sed printf devmem dmesg head tail; do
        ln -s busybox "$IR/bin/$app"
    done
    MODDIR=$KMOD/$KVER/kernel
    for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk failover net_failover virtio_net; do
        f=$(find "$MODDIR" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
        if [ -z "$f" ]; then
            grep -q "/$m.ko" "$KMOD/$KVER/modules.builtin" || { log "module $m not found in $KDEB"; exit 1; }
            continue    # built into the kernel
        fi
        case "$f" in
            *.xz) xz -dc "$f" > "$IR/lib/modules/$m.ko" ;;
            *.zst) zstd -dc "$f" > "$IR/lib/modules/$m.ko" ;;
            *) cp "$f" "$IR/lib/modules/$m.ko" ;;
        esac
    done
    cp "$HERE/init.sh" "$IR/init"
    chmod 755 "$IR/init"
    python3 "$REPO/scripts/qemu_fixture/mkcpio.py" "$IR" "$WH/initrd.cpio"

    # ---- 3. disk + boot ----------------------------------------------------------------
    python3 - "$WH/disk.raw" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for n in range(64):
        f.write((b"SMMUDBG BLOCK %d " % n).ljust(4096, bytes([n])))
PY
    mountpoint -q "$CH/proc" || mount -t proc proc "$CH/proc"
    trap 'umount "$CH/proc" 2>/dev/null || true' EXIT
    T0=$(date +%s)
    python3 "$HERE/run_qemu.py" --root "$CH" --kernel "$W/kpkg/boot/vmlinuz-$KVER" \
        --initrd "$W/initrd.cpio" --disk "$W/disk.raw" --outdir "$W/run" --mem "$MEM"
    log "boot + snapshot took $(( $(date +%s) - T0 )) s"
fi

# ---- 4. fixture --------------------------------------------------------------------
python3 "$HERE/build_fixture.py" --run "$WH/run" --packages "$WH/packages.json" --out "$OUT"
log "fixture written to $OUT"
ls -l "$OUT"
