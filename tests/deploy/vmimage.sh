#!/usr/bin/env bash
# vmimage.sh -- build the "virtual Pi" base image for tests/deploy/test_vm.py.
#
# Usage: vmimage.sh OUT_DIR KVER MIRROR SECURITY_MIRROR INSTALL_PACKAGES PREFETCH_PACKAGES
#        (each list comma-separated, as debootstrap's --include; either may be empty)
#
# A Debian bookworm minbase root with systemd, udev, the stock kernel
# (linux-image-$KVER, which may only be in bookworm-security or -updates, so
# it is installed after debootstrap), systemd-networkd on DHCP and the test agent on the
# second serial port, packed into OUT_DIR/rootfs.ext4 with `mkfs.ext4 -d`
# (no loop mounts), plus OUT_DIR/vmlinuz and OUT_DIR/initrd.img for a direct
# `qemu -kernel` boot. INSTALL_PACKAGES are installed in the image: the
# compiler, libc headers and Python that deploy.sh would install take dpkg
# minutes under TCG, and the container Pis (test_ct_*.py) already prove that
# step at native speed on bookworm and trixie. PREFETCH_PACKAGES (the web
# server) are only downloaded into apt's cache: deploy.sh still runs a real
# `apt-get install` in the guest on a Pi without a web server, it just does
# not wait for the network under emulation.
#
# Needs root (debootstrap, chroot). vm.py caches OUT_DIR keyed by a hash of
# this script, the agent, KVER and the package list, and builds into a
# temporary directory that it renames when done: a half-built image is
# never used.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE_SIZE=3G
BASE_PACKAGES=systemd-sysv,udev,initramfs-tools,iproute2,ca-certificates,dbus,kmod,sudo,procps

info() { printf '[vmimage] %s\n' "$*" >&2; }
fatal() { printf '[vmimage] error: %s\n' "$*" >&2; exit 1; }

bootstrap() {
	info "debootstrap bookworm ($MIRROR) into $ROOTFS"
	debootstrap --variant=minbase --include="$BASE_PACKAGES" \
		bookworm "$ROOTFS" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$OUT/debootstrap.log" >&2; fatal "debootstrap failed"; }
}

in_root() {
	chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
}

configure_system() {
	info "configuring the guest"
	echo ledd-vpi >"$ROOTFS/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 ledd-vpi\n' >"$ROOTFS/etc/hosts"
	printf '/dev/vda / ext4 defaults 0 1\n' >"$ROOTFS/etc/fstab"
	rm -f "$ROOTFS/etc/resolv.conf"
	echo 'nameserver 10.0.2.3' >"$ROOTFS/etc/resolv.conf"
	cat >"$ROOTFS/etc/apt/sources.list" <<-SOURCES
		deb $MIRROR bookworm main
		deb $MIRROR bookworm-updates main
		deb $SECURITY_MIRROR bookworm-security main
	SOURCES
	mkdir -p "$ROOTFS/etc/systemd/network"
	printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' >"$ROOTFS/etc/systemd/network/20-wired.network"
	in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
	# No getty on the consoles: the serial console carries the kernel log only.
	in_root systemctl mask serial-getty@ttyS0.service serial-getty@ttyS1.service getty@tty1.service >/dev/null 2>&1
	in_root passwd -d root >/dev/null
	# dpkg without an fsync per file (as eatmydata would): the disk is a throwaway
	# overlay, and under TCG those syncs made each package install of deploy.sh slow.
	echo force-unsafe-io >"$ROOTFS/etc/dpkg/dpkg.cfg.d/ledd-test-unsafe-io"
}

install_agent() {
	install -D -m 0755 "$HERE/guest-agent.sh" "$ROOTFS/usr/local/sbin/ledd-test-agent"
	cat >"$ROOTFS/etc/systemd/system/ledd-test-agent.service" <<-UNIT
		[Unit]
		Description=ledd virtual Pi test agent (second serial port)
		After=systemd-networkd.service

		[Service]
		ExecStart=/usr/local/sbin/ledd-test-agent
		Restart=always

		[Install]
		WantedBy=multi-user.target
	UNIT
	in_root systemctl enable ledd-test-agent.service >/dev/null 2>&1
}

make_initramfs() {
	info "initramfs with virtio and ext4"
	sed -i 's/^MODULES=.*/MODULES=list/' "$ROOTFS/etc/initramfs-tools/initramfs.conf"
	printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >"$ROOTFS/etc/initramfs-tools/modules"
	in_root update-initramfs -u -k "$KVER" >/dev/null
	cp "$ROOTFS/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
	cp "$ROOTFS/boot/initrd.img-$KVER" "$OUT/initrd.img"
	chmod 0644 "$OUT/vmlinuz" "$OUT/initrd.img"
}

install_kernel() {
	info "installing linux-image-$KVER"
	in_root apt-get update -q >/dev/null
	in_root apt-get install -y -q --no-install-recommends "linux-image-$KVER" >"$OUT/kernel.log" 2>&1 ||
		{ tail -n 30 "$OUT/kernel.log" >&2; fatal "cannot install linux-image-$KVER"; }
}

# apt_packages install|download LIST: LIST is comma-separated (may be empty). apt's lists stay in
# the image: deploy.sh may run apt-get update again, over slirp.
apt_packages() {
	local action=$1 packages=() only=()
	[ -n "$2" ] || return 0
	IFS=, read -ra packages <<<"$2"
	[ "$action" = download ] && only=(--download-only)
	info "${action}: ${packages[*]}"
	in_root apt-get install -y -q --no-install-recommends "${only[@]}" "${packages[@]}" >>"$OUT/packages.log" 2>&1 ||
		{ tail -n 30 "$OUT/packages.log" >&2; fatal "cannot $action ${packages[*]}"; }
}

make_image() {
	info "packing $OUT/rootfs.ext4"
	mkfs.ext4 -q -L ledd-vpi -d "$ROOTFS" "$OUT/rootfs.ext4" "$IMAGE_SIZE"
	rm -rf "$ROOTFS"
}

main() {
	[ $# -eq 6 ] || fatal "usage: vmimage.sh OUT_DIR KVER MIRROR SECURITY_MIRROR INSTALL_PACKAGES PREFETCH_PACKAGES"
	[ "$(id -u)" -eq 0 ] || fatal "needs root (debootstrap, chroot)"
	OUT=$1 KVER=$2 MIRROR=$3 SECURITY_MIRROR=$4
	ROOTFS=$OUT/rootfs
	mkdir -p "$OUT"
	bootstrap
	configure_system
	install_agent
	install_kernel
	apt_packages install "$5"
	apt_packages download "$6"
	make_initramfs
	make_image
	info "done: $OUT"
}

main "$@"
