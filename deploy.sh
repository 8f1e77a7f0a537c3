#!/usr/bin/env bash
# deploy.sh -- install ledd (GPIO daemon + web dashboard) on a Raspberry Pi, or run it locally.
#
#   sudo ./deploy.sh                 install on Raspberry Pi OS / Debian (bookworm, trixie)
#   ./deploy.sh --local [--port N]   run the whole stack from this checkout, simulated pins
#   sudo ./deploy.sh --uninstall     remove what the install added (--purge: config and state too)
#
# How: one function per step, each idempotent. Every file goes through
# put_file(), which compares content, mode and owner first and only writes
# (and counts a change) when something differs; services are restarted only
# when something they read changed. So a second run changes nothing and says
# so, and --dry-run can print every change without making it.
#
# lighttpd: our config (/opt/ledd/lighttpd.conf) is selected through a systemd
# drop-in for lighttpd.service (ExecStart ... -f), which also passes the
# LEDD_* variables that lighttpd.conf reads. Debian's /etc/lighttpd is never
# edited; removing the drop-in (on failure or --uninstall) restores the
# original site exactly. See docs/deploy.md.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# --- Install layout (the one place these paths live on the shell side) ------
LEDD_HOME_DIR=/opt/ledd                       # www/, cgi-bin/, ledd/, bin/, lighttpd.conf
LEDD_SBIN=/usr/local/sbin/ledd
LEDCTL_LINK=/usr/local/bin/ledctl
CONF_DIR=/etc/ledd
CONF_FILE=$CONF_DIR/ledd.conf
WEB_CONF_DIR=$CONF_DIR/web                    # Basic-auth snippet + bcrypt htpasswd
AUTH_SNIPPET=$WEB_CONF_DIR/auth.conf
HTPASSWD_FILE=$WEB_CONF_DIR/htpasswd
UNIT_FILE=/etc/systemd/system/ledd.service
LIGHTTPD_DROPIN=/etc/systemd/system/lighttpd.service.d/ledd.conf
UDEV_RULE=/etc/udev/rules.d/60-ledd-gpio.rules
WEB_STATE_DIR=/var/lib/ledd-web
STATE_DIR=/var/lib/ledd
RUNTIME_DIR=/run/ledd
BUILD_DIR=/var/cache/ledd/build
GPIO_GROUP_MARKER=$LEDD_HOME_DIR/.created-gpio-group
LOG_FILE=/var/log/ledd-deploy.log
OS_RELEASE=${LEDD_OS_RELEASE:-/etc/os-release} # the override is for tests
PYTHON=/usr/bin/python3
DAEMON_USER=ledd
GPIO_GROUP=gpio
WEB_USER=www-data
DEFAULT_PORT=80
LOCAL_PORT=8080
LOCAL_RUNTIME_DIR=$ROOT/run
LOCAL_RESTART_S=1                             # --local restarts a dead ledd like ledd.service:
LOCAL_START_LIMIT_BURST=10                    #   RestartSec, StartLimitBurst,
LOCAL_START_LIMIT_S=60                        #   StartLimitIntervalSec
# ledd's runtime files (cdaemon/src/defaults.h, ledd/defaults.py; tests check they agree)
LEDD_CMD_NAME=ledd.cmd
LEDD_PID_NAME=ledd.pid
LEDD_WATCH_NAME=watch
HEALTH_TIMEOUT_S=30
APT_PACKAGES=(lighttpd gcc make libc6-dev python3 python3-gpiozero python3-requests apache2-utils)
TREE_DIRS=(www cgi-bin ledd bin docs)

# --- Options -----------------------------------------------------------------
MODE=install
DRY_RUN=0
PURGE=0
NO_AUTH=0
PASSWORD=${LEDD_PASSWORD:-}
WEB_LOGIN=${LEDD_WEB_USER:-ledd}
PORT=${LEDD_PORT:-}
DESTDIR=${DESTDIR:-}

# --- State of this run -------------------------------------------------------
CHANGES=0
RESTART_LEDD=0
RESTART_WEB=0
RELOAD_SYSTEMD=0
NEW_PASSWORD=
TMP_DIR=
DROPIN_BACKUP=
DROPIN_WRITTEN=0
LOCAL_PIDS=()
LOCAL_RUN=
LOCAL_LEDD_LOG=
LOCAL_OWNS_RUN=0

info() { printf '[deploy] %s\n' "$*"; }
warn() { printf '[deploy] warning: %s\n' "$*" >&2; }
fatal() {
	printf '[deploy] error: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat <<EOF
Usage: sudo ./deploy.sh [options]        install ledd + dashboard on this Pi
       ./deploy.sh --local [--port N]     run everything from the checkout (sim pins)

Options:
  --local            run ledd (sim backend) and lighttpd in the foreground on
                     127.0.0.1:$LOCAL_PORT; Ctrl-C stops both. No root needed.
  --port N           HTTP port (default $DEFAULT_PORT, or $LOCAL_PORT with --local)
  --password PW      Basic-auth password for user '$WEB_LOGIN' (default: keep the
                     existing one, or generate a random one and print it once)
  --no-auth          no password on the dashboard (anyone on the network can
                     switch the LEDs)
  --dry-run          print every change without making it
  --stage            install the file tree into \$DESTDIR only (no apt, no
                     users, no systemctl): for tests and packaging
  --uninstall        stop and remove the service, files, user and lighttpd
                     drop-in; keeps $CONF_DIR and the LED state
  --purge            with --uninstall: remove $CONF_DIR and $STATE_DIR too
  -h, --help         this help

Environment:
  LEDD_PORT=80                     same as --port
  LEDD_PASSWORD=...                same as --password
  LEDD_WEB_USER=ledd               Basic-auth user name
  LEDD_LED_PINS="red:17,green:27"  LEDs as name:gpio (only for a NEW $CONF_FILE)
  LEDD_BUTTON_PINS="button:22"     buttons, active low with pull-up (ditto; "" = none)
  LEDD_CHIP=auto                   GPIO chip: auto, /dev/gpiochipN, gpiochipN, label (ditto)
  LEDD_BACKEND=chardev             chardev or sim (ditto; sim = no GPIO hardware)
  LEDD_RUNTIME_DIR=DIR             --local: runtime dir (default $LOCAL_RUNTIME_DIR)
  DESTDIR=DIR                      --stage: the staging root

An existing $CONF_FILE and the LED state are never overwritten.
Log of every install/uninstall: $LOG_FILE
EOF
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--local) MODE=local ;;
		--stage) MODE=stage ;;
		--uninstall) MODE=uninstall ;;
		--purge) PURGE=1 ;;
		--dry-run) DRY_RUN=1 ;;
		--no-auth) NO_AUTH=1 ;;
		--port)
			[ $# -ge 2 ] || fatal "--port needs a number"
			PORT=$2
			shift
			;;
		--port=*) PORT=${1#--port=} ;;
		--password)
			[ $# -ge 2 ] || fatal "--password needs a value"
			PASSWORD=$2
			shift
			;;
		--password=*) PASSWORD=${1#--password=} ;;
		-h | --help)
			usage
			exit 0
			;;
		*) fatal "unknown option '$1' (see --help)" ;;
		esac
		shift
	done
	if [ -z "$PORT" ]; then
		if [ "$MODE" = local ]; then PORT=$LOCAL_PORT; else PORT=$DEFAULT_PORT; fi
	fi
	if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
		fatal "invalid port '$PORT' (1-65535)"
	fi
	[[ $WEB_LOGIN =~ ^[A-Za-z0-9_.-]{1,32}$ ]] || fatal "invalid LEDD_WEB_USER '$WEB_LOGIN'"
	if [ "$PURGE" = 1 ] && [ "$MODE" != uninstall ]; then fatal "--purge only goes with --uninstall"; fi
	if [ "$MODE" = stage ] && [ -z "$DESTDIR" ]; then fatal "--stage needs DESTDIR=/some/dir"; fi
	if [ "$MODE" != stage ] && [ -n "$DESTDIR" ]; then fatal "DESTDIR is only for --stage"; fi
	if [ "$NO_AUTH" = 1 ] && [ -n "$PASSWORD" ]; then fatal "--no-auth and --password contradict each other"; fi
	return 0
}

cleanup() {
	if [ -n "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
}

on_error() {
	local status=$? line=$1
	trap - ERR
	# In a subshell ($(...) inherits the trap with set -E) let the caller report.
	if [ "$BASHPID" != "$$" ]; then exit "$status"; fi
	printf '[deploy] error: failed at deploy.sh line %s (exit %s)\n' "$line" "$status" >&2
	if [ "$MODE" = install ] && [ "$DRY_RUN" = 0 ]; then
		restore_lighttpd
		printf '[deploy] the full log is in %s\n' "$LOG_FILE" >&2
	fi
	exit "$status"
}

# --- Helpers -----------------------------------------------------------------

# Run a command that changes the system, or only print it with --dry-run.
run() {
	if [ "$DRY_RUN" = 1 ]; then
		info "would run: $*"
	else
		"$@"
	fi
}

note_change() {
	CHANGES=$((CHANGES + 1))
	if [ "$DRY_RUN" = 1 ]; then info "would $*"; else info "$*"; fi
}

# Owner that exists on this system (a staging host may lack ledd/www-data).
group_or_root() {
	if getent group "$1" >/dev/null; then echo "$1"; else echo root; fi
}

# put_file SRC DEST MODE OWNER GROUP [FLAG_VARIABLE]
# Install SRC as $DESTDIR/DEST unless it is already identical (content, mode,
# owner); on a change, count it and set FLAG_VARIABLE=1 (e.g. RESTART_LEDD).
put_file() {
	local src=$1 dest=$DESTDIR$2 mode=$3 owner=$4 group=$5 flag=${6:-}
	if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s "$src" "$dest" &&
		[ "$(stat -c '%a %U %G' "$dest")" = "${mode#0} $owner $group" ]; then
		return 0
	fi
	if [ -e "$dest" ]; then note_change "update $2"; else note_change "install $2"; fi
	if [ -n "$flag" ]; then printf -v "$flag" 1; fi
	[ "$DRY_RUN" = 1 ] && return 0
	install -D -m "$mode" -o "$owner" -g "$group" "$src" "$dest"
}

# put_dir DIR MODE OWNER GROUP
put_dir() {
	local dir=$DESTDIR$1 mode=$2 owner=$3 group=$4
	if [ -d "$dir" ] && [ "$(stat -c '%a %U %G' "$dir")" = "${mode#0} $owner $group" ]; then
		return 0
	fi
	note_change "create directory $1 ($mode $owner:$group)"
	[ "$DRY_RUN" = 1 ] && return 0
	install -d -m "$mode" -o "$owner" -g "$group" "$dir"
}

# remove_path PATH: delete a file/dir/link we installed, if present.
remove_path() {
	local path=$DESTDIR$1
	[ -e "$path" ] || [ -L "$path" ] || return 0
	note_change "remove $1"
	[ "$DRY_RUN" = 1 ] && return 0
	rm -rf -- "$path"
}

tmp_file() {
	mktemp "$TMP_DIR/XXXXXX"
}

# --- Steps: checks -----------------------------------------------------------

check_root() {
	[ "$(id -u)" -eq 0 ] && return 0
	if [ "$DRY_RUN" = 1 ]; then
		warn "not root: the dry run may miss changes to files it cannot read"
		return 0
	fi
	fatal "run as root: sudo $0 (--dry-run works without root)"
}

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
	if [[ $MODEL != *"Raspberry Pi"* ]] && [ "${LEDD_BACKEND:-chardev}" = chardev ]; then
		warn "not a Raspberry Pi: ledd will look for a GPIO chip with lines named GPIO17 etc. (LEDD_BACKEND=sim for none)"
	fi
}

open_log() {
	[ "$DRY_RUN" = 1 ] && return 0
	touch "$LOG_FILE" && chmod 0640 "$LOG_FILE"
	exec > >(tee -a "$LOG_FILE") 2>&1
	info "--- deploy.sh $MODE started $(date -u '+%F %T UTC'), log: $LOG_FILE"
}

# --- Steps: packages and build ------------------------------------------------

install_packages() {
	local missing=() pkg
	for pkg in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		info "packages: all present"
		return 0
	fi
	note_change "apt-get install ${missing[*]}"
	[ "$DRY_RUN" = 1 ] && return 0
	apt_get update || warn "apt-get update failed; trying with the current package lists"
	apt_get install -y --no-install-recommends "${missing[@]}" ||
		fatal "apt-get install failed (its output above, and in $LOG_FILE)"
}

# apt-get, non-interactive, its chatter to the log only (the tail on failure).
# DPkg::Lock::Timeout: wait for unattended-upgrades & co instead of failing.
apt_get() {
	local out=$TMP_DIR/apt.log
	if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@" >"$out" 2>&1; then
		cat "$out" >>"$LOG_FILE"
		return 0
	fi
	cat "$out" >>"$LOG_FILE"
	tail -n 15 "$out" >&2
	return 1
}

build_daemon() {
	local out=$BUILD_DIR
	if [ "$DRY_RUN" = 1 ] || [ "$MODE" = stage ]; then out=$TMP_DIR/build; fi
	if [ "$DRY_RUN" = 1 ] && ! { command -v make && command -v cc; } >/dev/null; then
		LEDD_BUILT=
		note_change "build ledd and install $LEDD_SBIN (no compiler yet: apt installs it first)"
		return 0
	fi
	info "building ledd (make -C cdaemon O=$out)"
	mkdir -p "$out"
	make -s -C "$ROOT/cdaemon" O="$out" >"$TMP_DIR/make.log" 2>&1 || {
		cat "$TMP_DIR/make.log" >&2
		fatal "building ledd failed (compiler output above)"
	}
	LEDD_BUILT=$out/ledd
	[ -x "$LEDD_BUILT" ] || fatal "the build produced no $LEDD_BUILT"
}

# --- Steps: users and groups --------------------------------------------------

create_users() {
	if ! getent group "$GPIO_GROUP" >/dev/null; then
		note_change "create system group $GPIO_GROUP"
		run groupadd --system "$GPIO_GROUP"
		CREATED_GPIO_GROUP=1
	fi
	if ! getent passwd "$DAEMON_USER" >/dev/null; then
		note_change "create system user $DAEMON_USER (groups $DAEMON_USER, $GPIO_GROUP)"
		run useradd --system --user-group --groups "$GPIO_GROUP" --home-dir "$STATE_DIR" \
			--no-create-home --shell /usr/sbin/nologin --comment "ledd GPIO daemon" "$DAEMON_USER"
	elif ! id -nG "$DAEMON_USER" | grep -qw "$GPIO_GROUP"; then
		note_change "add $DAEMON_USER to group $GPIO_GROUP"
		run usermod -aG "$GPIO_GROUP" "$DAEMON_USER"
		RESTART_LEDD=1
	fi
	# The web server and the admin who ran sudo share the FIFOs through group ledd.
	if ! id -nG "$WEB_USER" 2>/dev/null | grep -qw "$DAEMON_USER"; then
		note_change "add $WEB_USER to group $DAEMON_USER (FIFO access)"
		run usermod -aG "$DAEMON_USER" "$WEB_USER"
		RESTART_WEB=1
	fi
	if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] &&
		! id -nG "$SUDO_USER" 2>/dev/null | grep -qw "$DAEMON_USER"; then
		note_change "add $SUDO_USER to group $DAEMON_USER (ledctl; takes effect at next login)"
		run usermod -aG "$DAEMON_USER" "$SUDO_USER"
	fi
}

# --- Steps: files --------------------------------------------------------------

# The source files of one tree directory, relative to $ROOT (no caches, no board.json).
tree_files() {
	(cd "$ROOT" && find "$1" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
		! -name 'board.json' ! -name '.*' | LC_ALL=C sort)
}

install_tree() {
	local dir rel mode installed
	local listed=$TMP_DIR/listed
	: >"$listed"
	put_dir "$LEDD_HOME_DIR" 0755 root root
	for dir in "${TREE_DIRS[@]}"; do
		[ -d "$ROOT/$dir" ] || continue
		while IFS= read -r rel; do
			mode=0644
			if [ -x "$ROOT/$rel" ]; then mode=0755; fi
			put_file "$ROOT/$rel" "$LEDD_HOME_DIR/$rel" "$mode" root root TREE_CHANGED
			echo "$LEDD_HOME_DIR/$rel" >>"$listed"
		done < <(tree_files "$dir")
		# Files of an older version that the checkout no longer has.
		[ -d "$DESTDIR$LEDD_HOME_DIR/$dir" ] || continue
		while IFS= read -r installed; do
			installed=${installed#"$DESTDIR"}
			grep -qxF "$installed" "$listed" || remove_path "$installed"
		done < <(find "$DESTDIR$LEDD_HOME_DIR/$dir" -type f ! -path '*/__pycache__/*' ! -name 'board.json')
	done
	put_file "$ROOT/lighttpd.conf" "$LEDD_HOME_DIR/lighttpd.conf" 0644 root root RESTART_WEB
	if [ -n "$LEDD_BUILT" ]; then put_file "$LEDD_BUILT" "$LEDD_SBIN" 0755 root root RESTART_LEDD; fi
	install_ledctl_link
	compile_python
	generate_board_json
}

install_ledctl_link() {
	local target=$LEDD_HOME_DIR/bin/ledctl
	[ -f "$ROOT/bin/ledctl" ] || {
		warn "no bin/ledctl in the checkout: ledctl not installed"
		return 0
	}
	[ "$(readlink "$DESTDIR$LEDCTL_LINK" 2>/dev/null)" = "$target" ] && return 0
	note_change "link $LEDCTL_LINK -> $target"
	[ "$DRY_RUN" = 1 ] && return 0
	mkdir -p "$(dirname "$DESTDIR$LEDCTL_LINK")"
	ln -sfn "$target" "$DESTDIR$LEDCTL_LINK"
}

# CGIs run as www-data, which cannot write __pycache__: compile once here.
# checked-hash pycs stay valid whatever the files' timestamps.
compile_python() {
	local pkg=$DESTDIR$LEDD_HOME_DIR/ledd
	if [ "${TREE_CHANGED:-0}" = 0 ] && [ -d "$pkg/__pycache__" ]; then return 0; fi
	note_change "byte-compile $LEDD_HOME_DIR/ledd"
	[ "$DRY_RUN" = 1 ] && return 0
	"$PYTHON" -m compileall -q --invalidation-mode checked-hash "$pkg" >/dev/null
}

generate_board_json() {
	local out
	[ -f "$ROOT/ledd/board.py" ] || {
		warn "no ledd/board.py: the page will show no header diagram"
		return 0
	}
	out=$(tmp_file)
	if ! (cd "$ROOT" && "$PYTHON" -m ledd.board --out "$out") >"$TMP_DIR/board.log" 2>&1; then
		warn "board.json not generated: $(tail -n 1 "$TMP_DIR/board.log")"
		return 0
	fi
	put_file "$out" "$LEDD_HOME_DIR/www/board.json" 0644 root root
}

install_unit() {
	put_file "$ROOT/systemd/ledd.service" "$UNIT_FILE" 0644 root root RESTART_LEDD
	if [ "${RESTART_LEDD:-0}" = 1 ]; then RELOAD_SYSTEMD=1; fi
}

# Plain Debian has no rule giving group gpio the /dev/gpiochip* devices.
install_udev_rule() {
	local rules
	rules=$(grep -lsE 'gpiochip' /etc/udev/rules.d/*.rules /lib/udev/rules.d/*.rules \
		/usr/lib/udev/rules.d/*.rules 2>/dev/null | grep -v "$UDEV_RULE" || true)
	if [ -n "$rules" ] && [ ! -f "$DESTDIR$UDEV_RULE" ]; then
		info "udev: the system already grants GPIO access ($rules)"
		return 0
	fi
	local changed=0
	put_file "$ROOT/systemd/60-ledd-gpio.rules" "$UDEV_RULE" 0644 root root changed
	if [ "$changed" = 1 ] && [ "$MODE" = install ]; then
		run udevadm control --reload
		run udevadm trigger --subsystem-match=gpio --action=change
		run udevadm settle
		RESTART_LEDD=1
	fi
}

# Write $CONF_FILE from the shipped default, with the LEDD_* overrides applied.
# Never touches an existing file.
install_config() {
	put_dir "$CONF_DIR" 0755 root root
	if [ -e "$DESTDIR$CONF_FILE" ]; then
		if [ -n "${LEDD_LED_PINS:-}${LEDD_BUTTON_PINS+x}${LEDD_CHIP:-}${LEDD_BACKEND:-}" ]; then
			warn "$CONF_FILE exists and is kept: LEDD_LED_PINS/BUTTON_PINS/CHIP/BACKEND ignored (edit it, then systemctl reload ledd)"
		fi
		return 0
	fi
	local conf
	conf=$(tmp_file)
	render_config >"$conf"
	if [ -n "$LEDD_BUILT" ] && ! "$LEDD_BUILT" --check-config -c "$conf" >"$TMP_DIR/check.log" 2>&1; then
		cat "$TMP_DIR/check.log" >&2
		fatal "the generated configuration is invalid (check LEDD_LED_PINS/LEDD_BUTTON_PINS/LEDD_CHIP)"
	fi
	put_file "$conf" "$CONF_FILE" 0644 root root RESTART_LEDD
}

render_config() {
	local src=$ROOT/cdaemon/ledd.conf
	local chip=${LEDD_CHIP:-} backend=${LEDD_BACKEND:-}
	[ -z "$backend" ] || [[ $backend =~ ^(chardev|sim)$ ]] || fatal "LEDD_BACKEND must be chardev or sim"
	[[ $chip =~ ^[A-Za-z0-9/_.:-]*$ ]] || fatal "invalid LEDD_CHIP '$chip'"
	awk -v chip="$chip" -v backend="$backend" \
		-v drop_leds="${LEDD_LED_PINS:+1}" -v drop_buttons="${LEDD_BUTTON_PINS+1}" '
		/^\[/ { skip = (drop_leds && /^\[led[ \t]/) || (drop_buttons && /^\[button[ \t]/) }
		skip { next }
		chip != "" && /^[ \t]*chip[ \t]*=/ { print "chip = " chip; next }
		backend != "" && /^[ \t]*backend[ \t]*=/ { print "backend = " backend; next }
		{ print }
	' "$src"
	if [ -n "${LEDD_LED_PINS:-}" ]; then render_pins led "$LEDD_LED_PINS"; fi
	if [ -n "${LEDD_BUTTON_PINS:-}" ]; then render_pins button "$LEDD_BUTTON_PINS"; fi
}

# render_pins led|button "name:gpio,name:gpio"
render_pins() {
	local kind=$1 list=$2 item name gpio
	local IFS=,
	for item in $list; do
		name=${item%%:*}
		gpio=${item#*:}
		if ! [[ $name =~ ^[A-Za-z0-9_-]{1,24}$ ]] || ! [[ $gpio =~ ^[0-9]{1,3}$ ]]; then
			fatal "bad pin '$item' in LEDD_${kind^^}_PINS (want name:gpio, e.g. red:17)"
		fi
		printf '\n[%s %s]\ngpio = %s\n' "$kind" "$name" "$gpio"
		if [ "$kind" = button ]; then printf 'pull = up\nactive_low = true\n'; fi
	done
}

# --- Steps: web server -----------------------------------------------------------

random_password() {
	# 16 characters from [A-Za-z0-9]: ~95 bits. (A finite input: with pipefail,
	# `tr </dev/urandom | head` would fail on tr's SIGPIPE.)
	head -c 4096 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | cut -c 1-16
}

setup_auth() {
	local snippet
	snippet=$(tmp_file)
	put_dir "$WEB_CONF_DIR" 0755 root root
	if [ "$NO_AUTH" = 1 ]; then
		warn "--no-auth: anyone who can reach port $PORT can switch the LEDs"
		echo "# ledd: authentication disabled (deploy.sh --no-auth)" >"$snippet"
		put_file "$snippet" "$AUTH_SNIPPET" 0644 root root RESTART_WEB
		remove_path "$HTPASSWD_FILE"
		return 0
	fi
	update_htpasswd
	cat >"$snippet" <<EOF
# ledd: HTTP Basic auth for the whole site, written by deploy.sh.
# The password is stored as a bcrypt hash in $HTPASSWD_FILE (htpasswd -B);
# change it with: sudo ./deploy.sh --password NEW
server.modules += ("mod_auth", "mod_authn_file")
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "$HTPASSWD_FILE"
auth.require = ("/" => ("method" => "basic", "realm" => "ledd", "require" => "valid-user"))
EOF
	put_file "$snippet" "$AUTH_SNIPPET" 0644 root root RESTART_WEB
}

update_htpasswd() {
	local file=$DESTDIR$HTPASSWD_FILE web_group
	web_group=$(group_or_root "$WEB_USER")
	if [ -f "$file" ] && grep -q "^$WEB_LOGIN:" "$file"; then
		if [ -z "$PASSWORD" ]; then
			info "auth: keeping the existing password of '$WEB_LOGIN' (--password to change it)"
			put_mode "$HTPASSWD_FILE" 0640 root "$web_group"
			return 0
		fi
		if htpasswd -vbi "$file" "$WEB_LOGIN" <<<"$PASSWORD" >/dev/null 2>&1; then
			info "auth: password of '$WEB_LOGIN' unchanged"
			put_mode "$HTPASSWD_FILE" 0640 root "$web_group"
			KNOWN_PASSWORD=$PASSWORD
			return 0
		fi
	fi
	NEW_PASSWORD=${PASSWORD:-$(random_password)}
	KNOWN_PASSWORD=$NEW_PASSWORD
	if [ "$DRY_RUN" = 1 ] && ! command -v htpasswd >/dev/null; then
		note_change "set the password of '$WEB_LOGIN' (bcrypt) in $HTPASSWD_FILE"
		return 0
	fi
	local hashed
	hashed=$(tmp_file)
	htpasswd -ciB "$hashed" "$WEB_LOGIN" <<<"$NEW_PASSWORD" 2>/dev/null ||
		fatal "htpasswd -B failed (is apache2-utils installed?)"
	note_change "set the password of '$WEB_LOGIN' (bcrypt) in $HTPASSWD_FILE"
	[ "$DRY_RUN" = 1 ] && return 0
	install -D -m 0640 -o root -g "$web_group" "$hashed" "$file"
}

# put_mode PATH MODE OWNER GROUP: fix the metadata of a file we keep.
put_mode() {
	local path=$DESTDIR$1
	[ "$(stat -c '%a %U %G' "$path")" = "${2#0} $3 $4" ] && return 0
	note_change "chmod/chown $1"
	[ "$DRY_RUN" = 1 ] && return 0
	chown "$3:$4" "$path" && chmod "$2" "$path"
}

install_lighttpd_dropin() {
	local dropin
	dropin=$(tmp_file)
	put_dir "$WEB_STATE_DIR" 0750 "$(id -u "$WEB_USER" >/dev/null 2>&1 && echo "$WEB_USER" || echo root)" "$(group_or_root "$WEB_USER")"
	cat >"$dropin" <<EOF
# lighttpd runs ledd's site: written by ledd's deploy.sh, removed by --uninstall
# (which brings Debian's /etc/lighttpd/lighttpd.conf back: it is never edited).
[Service]
Environment=LEDD_HOME=$LEDD_HOME_DIR LEDD_HTTP_BIND=0.0.0.0 LEDD_HTTP_PORT=$PORT
Environment=LEDD_RUNTIME_DIR=$RUNTIME_DIR LEDD_WEB_STATE_DIR=$WEB_STATE_DIR
Environment=LEDD_AUTH_INCLUDE=$AUTH_SNIPPET
# lighttpd.conf sets no server.username: run it as $WEB_USER from the start
# (its groups, including $DAEMON_USER for the FIFOs, come from /etc/group).
User=$WEB_USER
Group=$WEB_USER
AmbientCapabilities=CAP_NET_BIND_SERVICE
ExecStartPre=
ExecStartPre=/usr/sbin/lighttpd -tt -f $LEDD_HOME_DIR/lighttpd.conf
ExecStart=
ExecStart=/usr/sbin/lighttpd -D -f $LEDD_HOME_DIR/lighttpd.conf
EOF
	if [ "$MODE" = install ] && [ "$DRY_RUN" = 0 ] && [ -f "$LIGHTTPD_DROPIN" ] &&
		! cmp -s "$dropin" "$LIGHTTPD_DROPIN"; then
		DROPIN_BACKUP=$TMP_DIR/dropin.backup
		cp -p "$LIGHTTPD_DROPIN" "$DROPIN_BACKUP"
	fi
	local changed=0
	put_file "$dropin" "$LIGHTTPD_DROPIN" 0644 root root changed
	if [ "$changed" = 1 ]; then
		DROPIN_WRITTEN=1
		RESTART_WEB=1
		RELOAD_SYSTEMD=1
	fi
}

# lighttpd -tt with the same environment the drop-in gives it.
validate_lighttpd() {
	[ "$DRY_RUN" = 1 ] && return 0
	if ! env LEDD_HOME="$LEDD_HOME_DIR" LEDD_HTTP_BIND=0.0.0.0 LEDD_HTTP_PORT="$PORT" \
		LEDD_RUNTIME_DIR="$RUNTIME_DIR" LEDD_WEB_STATE_DIR="$WEB_STATE_DIR" \
		LEDD_AUTH_INCLUDE="$AUTH_SNIPPET" \
		lighttpd -tt -f "$LEDD_HOME_DIR/lighttpd.conf" >"$TMP_DIR/lighttpd-tt.log" 2>&1; then
		cat "$TMP_DIR/lighttpd-tt.log" >&2
		fatal "lighttpd rejects the new configuration (lighttpd -tt above); the original site is restored"
	fi
}

# Undo our lighttpd drop-in after a failure: the previous one, or none (Debian's site).
restore_lighttpd() {
	[ "$DROPIN_WRITTEN" = 1 ] || return 0
	DROPIN_WRITTEN=0
	if [ -n "$DROPIN_BACKUP" ]; then
		cp -p "$DROPIN_BACKUP" "$LIGHTTPD_DROPIN"
	else
		rm -f "$LIGHTTPD_DROPIN"
		rmdir "$(dirname "$LIGHTTPD_DROPIN")" 2>/dev/null || true
	fi
	warn "restored lighttpd's previous configuration"
	systemctl daemon-reload || true
	systemctl try-restart lighttpd.service || true
}

# --- Steps: services ------------------------------------------------------------

start_services() {
	if [ "$RELOAD_SYSTEMD" = 1 ]; then
		run systemctl daemon-reload
	fi
	start_unit ledd.service "$RESTART_LEDD"
	start_unit lighttpd.service "$RESTART_WEB"
}

# start_unit UNIT CHANGED: enable it; start it if stopped, restart it if its inputs changed.
start_unit() {
	local unit=$1 changed=$2
	if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
		note_change "enable $unit"
		run systemctl enable --quiet "$unit"
	fi
	if ! systemctl is-active --quiet "$unit"; then
		note_change "start $unit"
		run systemctl restart "$unit" || service_failed "$unit"
	elif [ "$changed" = 1 ]; then
		note_change "restart $unit"
		run systemctl restart "$unit" || service_failed "$unit"
	else
		info "$unit: running, unchanged"
	fi
}

service_failed() {
	warn "$1 did not start:"
	systemctl --no-pager --lines=0 status "$1" >&2 || true
	journalctl --no-pager -n 25 -u "$1" >&2 || true
	fatal "$1 failed to start (journalctl -u $1 for more)"
}

# GET /api/state through lighttpd: with the password when we know it, else
# expect lighttpd's 401 and ask ledd directly over its FIFOs.
health_check() {
	[ "$DRY_RUN" = 1 ] && return 0
	local url=http://127.0.0.1:$PORT/api/state out
	info "health check: GET $url"
	if out=$(LEDD_CHECK_PASSWORD=${KNOWN_PASSWORD:-} "$PYTHON" - "$url" "$WEB_LOGIN" "$NO_AUTH" "$HEALTH_TIMEOUT_S" \
		"$LEDD_HOME_DIR" "$RUNTIME_DIR" 2>&1 <<'EOF'
import base64, json, os, sys, time, urllib.error, urllib.request
url, login, no_auth, timeout, home, rundir = sys.argv[1:]
password = os.environ.get("LEDD_CHECK_PASSWORD", "")
deadline = time.monotonic() + float(timeout)
last = "no answer"
while time.monotonic() < deadline:
    req = urllib.request.Request(url)
    if password:
        token = base64.b64encode(("%s:%s" % (login, password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            state = json.loads(resp.read())
            print("the API answers through lighttpd: backend %s, %d LEDs, %d buttons"
                  % (state["backend"], len(state["leds"]), len(state["buttons"])))
            sys.exit(0)
    except urllib.error.HTTPError as e:
        last = "HTTP %d: %s" % (e.code, e.read(300).decode(errors="replace"))
        if e.code == 401 and not password and no_auth != "1":
            sys.path.insert(0, home)
            from ledd.client import Client
            state = json.loads(Client(rundir).request("STATE"))
            print("lighttpd asks for the password (kept from an earlier run, not checked); "
                  "ledd answers on its FIFOs: backend %s" % state["backend"])
            sys.exit(0)
    except Exception as e:  # connection refused while lighttpd restarts, bad JSON...
        last = "%s: %s" % (type(e).__name__, e)
    time.sleep(1)
print("no healthy answer within %ss; last: %s" % (timeout, last))
sys.exit(1)
EOF
	); then
		info "health check: $out"
		return 0
	fi
	warn "health check failed: $out"
	diagnose
	fatal "the dashboard does not work yet (diagnosis above; log in $LOG_FILE)"
}

diagnose() {
	local unit
	for unit in ledd lighttpd; do
		printf '\n--- systemctl status %s\n' "$unit" >&2
		systemctl --no-pager --lines=15 status "$unit" >&2 || true
	done
	printf '\n--- %s\n' "$RUNTIME_DIR" >&2
	ls -la "$RUNTIME_DIR" >&2 || true
	printf '\n--- groups: %s\n' "$(id "$WEB_USER" 2>&1)" >&2
	ls -l /dev/gpiochip* >&2 2>/dev/null || printf 'no /dev/gpiochip* on this system\n' >&2
}

print_summary() {
	local addr
	if [ "$DRY_RUN" = 1 ]; then
		info "dry run: $CHANGES change(s) would be made"
		return 0
	fi
	if [ "$CHANGES" -eq 0 ]; then
		info "nothing changed: ledd is already installed and up to date; nothing restarted"
	else
		info "done: $CHANGES change(s)"
	fi
	if [ "$MODE" = install ]; then
		info "dashboard:"
		for addr in $(hostname -I 2>/dev/null) $(hostname).local; do
			case $addr in *:*) continue ;; esac
			if [ "$PORT" = 80 ]; then info "  http://$addr/"; else info "  http://$addr:$PORT/"; fi
		done
	fi
	if [ "$NO_AUTH" = 1 ]; then
		info "  no password (--no-auth)"
	elif [ -n "$NEW_PASSWORD" ]; then
		info "  user: $WEB_LOGIN  password: $NEW_PASSWORD   (shown once; stored only as a bcrypt hash)"
	else
		info "  user: $WEB_LOGIN  password: unchanged"
	fi
	info "command line: ledctl state   (for members of group $DAEMON_USER; log in again after being added)"
}

# --- Modes ------------------------------------------------------------------------

install_files() {
	build_daemon
	install_tree
	install_unit
	install_udev_rule
	install_config
	setup_auth
	install_lighttpd_dropin
}

do_install() {
	check_root
	detect_system
	open_log
	install_packages
	create_users
	install_files
	if [ "${CREATED_GPIO_GROUP:-0}" = 1 ] && [ "$DRY_RUN" = 0 ]; then : >"$GPIO_GROUP_MARKER"; fi
	validate_lighttpd
	start_services
	health_check
	print_summary
}

do_stage() {
	mkdir -p "$DESTDIR"
	DESTDIR=$(cd "$DESTDIR" && pwd)
	info "staging the file tree into $DESTDIR (no apt, users or services)"
	install_files
	print_summary
}

do_uninstall() {
	check_root
	open_log
	if systemctl list-unit-files ledd.service >/dev/null 2>&1 && [ -f "$UNIT_FILE" ]; then
		if systemctl is-enabled --quiet ledd.service 2>/dev/null || systemctl is-active --quiet ledd.service; then
			note_change "stop and disable ledd.service"
			run systemctl disable --now --quiet ledd.service
		fi
	fi
	local before=$CHANGES web_changed=0
	if [ -e "$LIGHTTPD_DROPIN" ]; then web_changed=1; fi
	remove_path "$UNIT_FILE"
	remove_path "$LIGHTTPD_DROPIN"
	if [ -d "$(dirname "$LIGHTTPD_DROPIN")" ] && [ -z "$(ls -A "$(dirname "$LIGHTTPD_DROPIN")")" ]; then
		run rmdir "$(dirname "$LIGHTTPD_DROPIN")"
	fi
	if [ "$CHANGES" != "$before" ]; then run systemctl daemon-reload; fi
	if [ -f "$UDEV_RULE" ]; then
		remove_path "$UDEV_RULE"
		run udevadm control --reload
	fi
	local created_gpio=0
	if [ -f "$GPIO_GROUP_MARKER" ]; then created_gpio=1; fi
	if [ "$(readlink "$LEDCTL_LINK" 2>/dev/null)" = "$LEDD_HOME_DIR/bin/ledctl" ]; then remove_path "$LEDCTL_LINK"; fi
	remove_path "$LEDD_SBIN"
	remove_path "$LEDD_HOME_DIR"
	remove_path "$WEB_CONF_DIR"
	remove_path "$WEB_STATE_DIR"
	remove_path "$(dirname "$BUILD_DIR")"
	remove_path "$RUNTIME_DIR"
	if getent passwd "$DAEMON_USER" >/dev/null; then
		note_change "delete user $DAEMON_USER"
		run userdel "$DAEMON_USER"
	fi
	if getent group "$DAEMON_USER" >/dev/null; then
		web_changed=1
		note_change "delete group $DAEMON_USER"
		run groupdel "$DAEMON_USER"
	fi
	if [ "$created_gpio" = 1 ] && getent group "$GPIO_GROUP" >/dev/null; then
		note_change "delete group $GPIO_GROUP (deploy.sh created it)"
		run groupdel "$GPIO_GROUP"
	fi
	# Last, so that lighttpd's workers no longer carry the deleted group.
	if [ "$web_changed" = 1 ] && systemctl is-active --quiet lighttpd.service; then
		note_change "restart lighttpd.service with Debian's own configuration"
		run systemctl restart lighttpd.service
	fi
	if [ "$PURGE" = 1 ]; then
		remove_path "$CONF_DIR"
		remove_path "$STATE_DIR"
	elif [ -d "$CONF_DIR" ] || [ -d "$STATE_DIR" ]; then
		info "kept $CONF_DIR and $STATE_DIR (--purge removes them); packages stay installed"
	fi
	if [ "$DRY_RUN" = 1 ]; then
		info "dry run: $CHANGES change(s) would be made"
	else
		info "uninstalled ($CHANGES change(s))"
	fi
}

# shellcheck source=deploy.d/local.sh
. "$ROOT/deploy.d/local.sh"

main() {
	parse_args "$@"
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ledd-deploy.XXXXXX")
	trap cleanup EXIT
	trap 'on_error $LINENO' ERR
	case $MODE in
	local) do_local ;;
	stage) do_stage ;;
	uninstall) do_uninstall ;;
	install) do_install ;;
	esac
}

# Sourced (by a test, to call one function) it only defines; run, it runs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
