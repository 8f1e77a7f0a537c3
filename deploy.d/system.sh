# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/system.sh -- checks, the build, users and groups.
#
# Sourced by deploy.sh. Every change is recorded with journal() (journal.sh)
# the moment it is made, so a failure can undo it.

# Root is needed except for a dry run.
check_root() {
	[ "$(id -u)" -eq 0 ] && return 0
	if [ "$DRY_RUN" = 1 ]; then
		warn "not root: the dry run may miss changes to files it cannot read"
		return 0
	fi
	fatal "run as root: sudo $0 (--dry-run works without root)"
}

# Refuse systems other than Debian/Raspberry Pi OS bookworm or trixie; note the board.
detect_system() {
	local id="" codename="" pretty=""
	if [ -r "$OS_RELEASE" ]; then
		# shellcheck disable=SC1090
		id=$(. "$OS_RELEASE" && echo "${ID:-}")
		# shellcheck disable=SC1090
		codename=$(. "$OS_RELEASE" && echo "${VERSION_CODENAME:-}")
		# shellcheck disable=SC1090
		pretty=$(. "$OS_RELEASE" && echo "${PRETTY_NAME:-unknown}")
	fi
	case $id in
	debian | raspbian) ;;
	*) fatal "unsupported system '${pretty:-no /etc/os-release}': ledd installs on Raspberry Pi OS or Debian" ;;
	esac
	case $codename in
	bookworm | trixie) ;;
	*) fatal "unsupported release '$pretty': ledd needs bookworm (12) or trixie (13)" ;;
	esac
	ARCH=$(dpkg --print-architecture)
	case $ARCH in
	arm64 | armhf | amd64 | i386) ;;
	*) warn "architecture $ARCH is untested" ;;
	esac
	MODEL=$(tr -d '\0' 2>/dev/null </sys/firmware/devicetree/base/model || true)
	info "system: $pretty ($ARCH), board: ${MODEL:-no device tree (not a Raspberry Pi)}"
	if [[ $MODEL != *"Raspberry Pi"* ]] && [ "${BACKEND:-chardev}" = chardev ]; then
		warn "not a Raspberry Pi: ledd will look for a GPIO chip with lines named GPIO17 etc. (--backend sim for none)"
	fi
}

# Step: build ledd out of tree (the checkout may be read-only).
step_build() {
	local out=$BUILD_DIR stamp
	# A dry run compiles nothing: a build from these sources is used, else the build is announced.
	if [ "$DRY_RUN" = 1 ]; then
		LEDD_BUILT=
		if [ -x "$BUILD_DIR/ledd" ] && command -v cc >/dev/null &&
			[ "$(cat "$BUILD_DIR/$BUILD_STAMP_NAME" 2>/dev/null)" = "$(build_stamp)" ]; then
			LEDD_BUILT=$BUILD_DIR/ledd
		else
			note_change "build ledd (make -C cdaemon O=$BUILD_DIR) and install $LEDD_SBIN"
		fi
		return 0
	fi
	if [ "$MODE" = stage ]; then out=$TMP_DIR/build; fi
	if [ "$out" = "$BUILD_DIR" ]; then make_parents "$BUILD_DIR"; fi
	mkdir -p "$out"
	LEDD_BUILT=$out/ledd
	stamp=$(build_stamp)
	if [ -x "$LEDD_BUILT" ] && [ "$(cat "$out/$BUILD_STAMP_NAME" 2>/dev/null)" = "$stamp" ]; then
		info "ledd is built from these sources already ($out)"
		return 0
	fi
	info "building ledd (make -C cdaemon O=$out)"
	rm -f "$out/$BUILD_STAMP_NAME"
	# -B: the objects of the previous install may look newer than sources that
	# came with an older mtime (a checkout of another version), and linking them
	# would mix two versions. The stamp, not mtimes, says when to build.
	make -B -s -C "$ROOT/cdaemon" O="$out" >"$TMP_DIR/make.log" 2>&1 || {
		cat "$TMP_DIR/make.log" >&2
		fatal "building ledd failed (compiler output above)"
	}
	[ -x "$LEDD_BUILT" ] || fatal "the build produced no $LEDD_BUILT"
	printf '%s\n' "$stamp" >"$out/$BUILD_STAMP_NAME"
}

# What a build of ledd depends on: its sources, the Makefile and the compiler (one hash).
build_stamp() {
	{
		(cd "$ROOT/cdaemon" && find Makefile src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		cc --version 2>&1 | head -n 1
	} | sha256sum | cut -d' ' -f1
}

# add_member USER GROUP: USER joins GROUP (journaled).
add_member() {
	id -nG "$1" 2>/dev/null | grep -qw "$2" && return 0
	note_change "add $1 to group $2"
	run usermod -aG "$2" "$1"
	journal member "$1" "$2"
}

# create_user NAME GROUP HOME COMMENT: a system user with its own group, member of GROUP (journaled).
create_user() {
	note_change "create system user $1 (groups $1, $2)"
	run useradd --system --user-group --groups "$2" --home-dir "$3" --no-create-home \
		--shell /usr/sbin/nologin --comment "$4" "$1"
	journal group "$1"
	journal user "$1"
}

# Step: group gpio, users ledd and ledd-web, and who may use the FIFOs (group ledd).
step_users() {
	if ! getent group "$GPIO_GROUP" >/dev/null; then
		note_change "create system group $GPIO_GROUP"
		run groupadd --system "$GPIO_GROUP"
		journal group "$GPIO_GROUP"
		# At once: a later failure or an uninstall knows the group is ours.
		if [ "$DRY_RUN" = 0 ]; then
			make_parents "$DEPLOY_STATE_DIR"
			: >"$GPIO_GROUP_MARKER"
			journal file "$GPIO_GROUP_MARKER" -
		fi
	fi
	if ! getent passwd "$DAEMON_USER" >/dev/null; then
		create_user "$DAEMON_USER" "$GPIO_GROUP" "$STATE_DIR" "ledd GPIO daemon"
	elif ! id -nG "$DAEMON_USER" | grep -qw "$GPIO_GROUP"; then
		add_member "$DAEMON_USER" "$GPIO_GROUP"
		RESTART_LEDD=1
	fi
	if ! getent passwd "$WEB_USER" >/dev/null; then
		create_user "$WEB_USER" "$DAEMON_USER" "$WEB_STATE_DIR" "ledd web dashboard (reaches the FIFOs)"
	else
		add_member "$WEB_USER" "$DAEMON_USER"
	fi
	# Before ledd-web, www-data was in group ledd: every web app on the Pi could drive the FIFOs.
	if id -nG www-data 2>/dev/null | grep -qw "$DAEMON_USER"; then
		note_change "remove www-data from group $DAEMON_USER (only $WEB_USER serves ledd now)"
		run gpasswd -d www-data "$DAEMON_USER" >/dev/null
		journal unmember www-data "$DAEMON_USER"
	fi
	if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
		add_member "$SUDO_USER" "$DAEMON_USER"
	fi
}
