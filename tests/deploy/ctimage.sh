#!/usr/bin/env bash
# ctimage.sh -- build a pristine "Raspberry Pi OS Lite" root for the container scenarios
# (tests/deploy/container.py, test_ct_*.py).
#
# Usage: ctimage.sh OUT_DIR SUITE MIRROR SECURITY_MIRROR [PREFETCH_PACKAGES...]
#
# A Debian SUITE (bookworm or trixie) minbase root with systemd, udev, sudo and
# what Raspberry Pi OS Lite has that plain Debian lacks: a `gpio` system group
# with Raspberry Pi OS's permission rule (SUBSYSTEM=="gpio", GROUP="gpio",
# MODE="0660" in /etc/udev/rules.d/99-com.rules), /boot/firmware/config.txt,
# and a login user with sudo who is *not* called `pi` (Raspberry Pi OS asks for
# a name at first boot). No lighttpd and no python3, as on a fresh Lite image.
#
# PREFETCH_PACKAGES are downloaded into apt's cache, not installed: the
# scenarios run in a private network namespace with no route out, and
# deploy.sh's real `apt-get install` takes them from there. apt's lists stay,
# with the "lists updated" stamp that deploy.sh reads (the harness touches it
# at each boot, so deploy.sh uses the lists without an `apt-get update`).
#
# Needs root (debootstrap, chroot). container.py caches OUT_DIR keyed by a hash
# of this script, SUITE, the mirror and the package list, and builds into a
# temporary directory that it renames when done.
set -Eeuo pipefail

BASE_PACKAGES=systemd-sysv,udev,dbus,iproute2,ca-certificates,sudo,procps,kmod,less
ADMIN_USER=owner

info() { printf '[ctimage] %s\n' "$*" >&2; }
fatal() { printf '[ctimage] error: %s\n' "$*" >&2; exit 1; }

bootstrap() {
	info "debootstrap $SUITE ($MIRROR) into $ROOTFS"
	debootstrap --variant=minbase --include="$BASE_PACKAGES" \
		"$SUITE" "$ROOTFS" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$OUT/debootstrap.log" >&2; fatal "debootstrap failed"; }
}

in_root() {
	chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
}

configure_system() {
	info "configuring the root"
	echo ledd-ct >"$ROOTFS/etc/hostname"
	printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 ledd-ct\n' >"$ROOTFS/etc/hosts"
	: >"$ROOTFS/etc/fstab"
	cat >"$ROOTFS/etc/apt/sources.list" <<-SOURCES
		deb $MIRROR $SUITE main
		deb $MIRROR $SUITE-updates main
		deb $SECURITY_MIRROR $SUITE-security main
	SOURCES
	# Nothing in a container to wait for or to fail on: no getty, no network setup.
	in_root systemctl mask getty@tty1.service console-getty.service systemd-networkd-wait-online.service \
		>/dev/null 2>&1 || true
	in_root passwd -d root >/dev/null
	# dpkg without an fsync per file: every scenario's root is a throwaway overlay.
	echo force-unsafe-io >"$ROOTFS/etc/dpkg/dpkg.cfg.d/ledd-test-unsafe-io"
	in_root systemd-machine-id-setup >/dev/null 2>&1 || true
}

# What Raspberry Pi OS has and Debian has not (see the file comment).
raspberry_pi_os() {
	info "Raspberry Pi OS specifics: gpio group and rule, /boot/firmware/config.txt, user $ADMIN_USER"
	in_root groupadd --system gpio
	printf '%s\n' 'SUBSYSTEM=="gpio", GROUP="gpio", MODE="0660"' >"$ROOTFS/etc/udev/rules.d/99-com.rules"
	mkdir -p "$ROOTFS/boot/firmware"
	printf '%s\n' '# Raspberry Pi OS config.txt (the virtual one)' 'dtparam=audio=on' 'camera_auto_detect=1' \
		'display_auto_detect=1' 'arm_64bit=1' '[all]' >"$ROOTFS/boot/firmware/config.txt"
	in_root useradd -m -s /bin/bash -G sudo,gpio "$ADMIN_USER"
	printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$ADMIN_USER" >"$ROOTFS/etc/sudoers.d/010_$ADMIN_USER-nopasswd"
	chmod 0440 "$ROOTFS/etc/sudoers.d/010_$ADMIN_USER-nopasswd"
}

prefetch() {
	info "apt-get update"
	in_root apt-get update -q >"$OUT/apt.log" 2>&1 || { tail -n 30 "$OUT/apt.log" >&2; fatal "apt-get update failed"; }
	if [ $# -gt 0 ]; then
		info "prefetching: $*"
		in_root apt-get install -y -q -d --no-install-recommends "$@" >>"$OUT/apt.log" 2>&1 ||
			{ tail -n 30 "$OUT/apt.log" >&2; fatal "prefetch failed"; }
	fi
	mkdir -p "$ROOTFS/var/lib/apt/periodic"
	touch "$ROOTFS/var/lib/apt/periodic/update-success-stamp"
}

main() {
	[ $# -ge 4 ] || fatal "usage: ctimage.sh OUT_DIR SUITE MIRROR SECURITY_MIRROR [PREFETCH_PACKAGES...]"
	[ "$(id -u)" -eq 0 ] || fatal "needs root (debootstrap, chroot)"
	OUT=$1 SUITE=$2 MIRROR=$3 SECURITY_MIRROR=$4
	shift 4
	ROOTFS=$OUT/rootfs
	mkdir -p "$OUT"
	bootstrap
	configure_system
	raspberry_pi_os
	prefetch "$@"
	info "done: $OUT"
}

main "$@"
