#!/usr/bin/env bash
# deploy.sh -- install ledd (GPIO daemon + web dashboard) on a Raspberry Pi, or run it locally.
#
#   sudo ./deploy.sh                 install on Raspberry Pi OS / Debian (bookworm, trixie)
#   ./deploy.sh --local [--port N]   run the whole stack from this checkout, simulated pins
#   sudo /opt/ledd/deploy.sh --uninstall   remove what the install added (--purge: everything)
#
# How: one function per step (INSTALL_STEPS below), each idempotent. Every
# change goes through the transaction journal (deploy.d/journal.sh): a file is
# compared before it is written and backed up when it is replaced; users,
# groups, units enabled or started and packages installed are recorded as they
# happen. Any failure (fatal, an unexpected error, Ctrl-C, SIGTERM) undoes the
# run in reverse, so the system is left as it was, and for an upgrade the
# previous install keeps running. A successful run appends what it created to
# the install journal, which --uninstall reads.
#
# The dashboard is served by our own lighttpd instance, ledd-web.service, as
# the dedicated user ledd-web: Debian's lighttpd.service and /etc/lighttpd are
# never edited. Choices (port, auth, TLS, hosts, backend, chip) are remembered
# in /etc/ledd/deploy.conf and applied again by a plain re-run. See docs/deploy.md.
#
# Environment (--help has the details): LEDD_WEB_USER, LEDD_LED_PINS, LEDD_BUTTON_PINS,
# LEDD_CHIP, LEDD_BACKEND (a new ledd.conf), LEDD_RUNTIME_DIR (--local), DESTDIR (--stage),
# MQTT_URL, MQTT_PASSWORD_STDIN, MQTT_SET_PASSWORD (the --mqtt flags), TMPDIR; for tests only:
# LEDD_DEPLOY_FAIL_AT, LEDD_DEPLOY_PAUSE_AT, LEDD_OS_RELEASE. LEDD_PASSWORD is refused.
# shellcheck source-path=SCRIPTDIR
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# --- Install layout (the one place these paths live on the shell side) ------
LEDD_HOME_DIR=/opt/ledd                       # the whole tree, deploy.sh included
LEDD_SBIN=/usr/local/sbin/ledd
LEDCTL_LINK=/usr/local/bin/ledctl
CONF_DIR=/etc/ledd
CONF_FILE=$CONF_DIR/ledd.conf
DEPLOY_CONF=$CONF_DIR/deploy.conf             # remembered choices (deploy.d/settings.sh)
WEB_CONF_DIR=$CONF_DIR/web                    # lighttpd snippets, bcrypt htpasswd, TLS
WEB_ENV_FILE=$WEB_CONF_DIR/web.env            # ledd-web.service's EnvironmentFile
AUTH_SNIPPET=$WEB_CONF_DIR/auth.conf
SITE_SNIPPET=$WEB_CONF_DIR/site.conf          # IPv6 listen, TLS, HTTP->HTTPS
HTPASSWD_FILE=$WEB_CONF_DIR/htpasswd
TLS_DIR=$WEB_CONF_DIR/tls
TLS_CERT=$TLS_DIR/cert.pem
TLS_KEY=$TLS_DIR/key.pem
UNIT_DIR=/etc/systemd/system
UNIT_FILE=$UNIT_DIR/ledd.service
WEB_UNIT_FILE=$UNIT_DIR/ledd-web.service
WEB_UNIT=ledd-web.service
LEDD_UNIT=ledd.service
DEBIAN_WEB_UNIT=lighttpd.service
LEGACY_DROPIN=$UNIT_DIR/lighttpd.service.d/ledd.conf # deploy.sh before ledd-web.service
UDEV_RULE=/etc/udev/rules.d/60-ledd-gpio.rules
BOOT_CONFIGS=(/boot/firmware/config.txt /boot/config.txt) # Raspberry Pi OS, bookworm on / before
UDEV_RULES_DIRS=(/etc/udev/rules.d /lib/udev/rules.d /usr/lib/udev/rules.d)
WEB_STATE_DIR=/var/lib/ledd-web
STATE_DIR=/var/lib/ledd
RUNTIME_DIR=/run/ledd
BUILD_DIR=/var/cache/ledd/build
BUILD_STAMP_NAME=.sources.sha256           # in BUILD_DIR: what the ledd there was built from
DEPLOY_STATE_DIR=/var/lib/ledd-deploy         # the install journal, markers
INSTALL_JOURNAL=$DEPLOY_STATE_DIR/installed.journal
GPIO_GROUP_MARKER=$DEPLOY_STATE_DIR/created-gpio-group
LEGACY_GPIO_MARKER=$LEDD_HOME_DIR/.created-gpio-group
LOCK_FILE=/run/ledd-deploy.lock               # not /run/lock: any user may create files there
LOG_FILE=/var/log/ledd-deploy.log
OS_RELEASE=${LEDD_OS_RELEASE:-/etc/os-release} # the override is for tests
PYTHON=/usr/bin/python3
LIGHTTPD=/usr/sbin/lighttpd
DAEMON_USER=ledd
WEB_USER=ledd-web
GPIO_GROUP=gpio
DEFAULT_PORT=80
DEFAULT_TLS_PORT=443
LOCAL_PORT=8080
LOCAL_RUNTIME_DIR=$ROOT/run
LOCAL_RESTART_S=1                             # --local restarts a dead ledd like ledd.service:
LOCAL_START_LIMIT_BURST=10                    #   RestartSec, StartLimitBurst,
LOCAL_START_LIMIT_S=60                        #   StartLimitIntervalSec
HEALTH_TIMEOUT_S=30
PROC_NET_TCP=(/proc/net/tcp /proc/net/tcp6)   # the port check when ss is missing
IPV6_SWITCH=/proc/sys/net/ipv6/conf/all/disable_ipv6 # absent or 1: no IPv6 sockets in site.conf
# ledd's runtime files (cdaemon/src/defaults.h, ledd/defaults.py; tests check they agree)
LEDD_CMD_NAME=ledd.cmd
LEDD_PID_NAME=ledd.pid
LEDD_REPLY_NAME=reply
APT_PACKAGES=(lighttpd gcc make libc6-dev python3 python3-gpiozero apache2-utils)
TLS_PACKAGES=(lighttpd-mod-openssl openssl)
# What lighttpd's postinst creates and its purge leaves behind: Debian's default page and the
# directories holding it (files first). Those missing before deploy.sh installs lighttpd go again
# when lighttpd does (rollback, --uninstall --purge; deploy.d/packages.sh), if still theirs.
WEB_PACKAGE_LEFTOVERS=(/var/www/html/index.lighttpd.html /var/www/html /var/www)
# apt's "package lists updated" stamps (apt.systemd.daily, update-notifier); lists newer than
# APT_LISTS_MAX_AGE_MIN are used without another apt-get update (deploy.d/system.sh)
APT_UPDATE_STAMPS=(/var/lib/apt/periodic/update-success-stamp /var/lib/apt/periodic/update-stamp)
APT_LISTS_MAX_AGE_MIN=60
APT_ARCHIVES=/var/cache/apt/archives          # where a rollback's old .debs may already be
# The tree installed in $LEDD_HOME_DIR: everything a run of $LEDD_HOME_DIR/deploy.sh needs to
# install again (ledd's sources included), so it does all a checkout's deploy.sh does.
TREE_DIRS=(www cgi-bin ledd bin docs deploy.d systemd lighttpd.d cdaemon/src)
TREE_FILES=(deploy.sh lighttpd.conf cdaemon/Makefile cdaemon/ledd.conf cdaemon/README.md)
# The install, in order: step NAME runs function step_NAME. Add-ons insert theirs with add_step;
# e.g. deploy.d/mqtt.sh's steps, added below where that part is sourced.
INSTALL_STEPS=(packages build users files config auth tls web_config legacy_migration
	python_entry_points validate services health)
UNINSTALL_HOOKS=()      # functions add-ons register; do_uninstall calls them before removing files
CORE_PARTS="interrupt.sh journal.sh packages.sh settings.sh system.sh rpi.sh files.sh web.sh tls.sh uninstall.sh local.sh mqtt.sh"
# Test hooks (docs/deploy.md): make step NAME fail, or pause before it.
FAIL_AT=${LEDD_DEPLOY_FAIL_AT:-}
PAUSE_AT=${LEDD_DEPLOY_PAUSE_AT:-}

# --- Options (remembered ones: deploy.d/settings.sh) ----------------------------
MODE=install
DRY_RUN=0
PURGE=0
ASSUME_YES=0
PASSWORD_FROM=          # stdin | prompt
WEB_LOGIN=${LEDD_WEB_USER:-ledd}
DESTDIR=${DESTDIR:-}
OPT_PORT=               # flags as given; empty = keep the remembered value
OPT_AUTH=
OPT_TLS=
OPT_TLS_CERT=
OPT_TLS_KEY=
OPT_HOSTS=()
OPT_HOSTS_LINE=
OPT_CLEAR_HOSTS=0
OPT_REDIRECT_PORT=
# deploy.conf keys -> the variables above (deploy.d/settings.sh; parts add theirs with register_setting)
SETTING_KEYS=(port auth tls tls_cert tls_key redirect_port hosts backend chip)
declare -A SETTING_VARS=([port]=OPT_PORT [auth]=OPT_AUTH [tls]=OPT_TLS [tls_cert]=OPT_TLS_CERT
	[tls_key]=OPT_TLS_KEY [redirect_port]=OPT_REDIRECT_PORT [hosts]=OPT_HOSTS_LINE [backend]=BACKEND [chip]=CHIP)
declare -A SETTING_DEFAULTS=([auth]=basic [tls]=off [redirect_port]=80)
declare -A REMEMBERED=()
PORT=                   # the effective choices of this run
AUTH=basic
TLS=off
TLS_CERT_SRC=
TLS_KEY_SRC=
HOSTS=
BACKEND=
CHIP=

# --- State of this run -------------------------------------------------------
CHANGES=0
RESTART_LEDD=0
RESTART_WEB=0
RELOAD_SYSTEMD=0
TREE_CHANGED=0
CONF_OVERRIDES=0        # pins/chip/backend given: they only matter for a new ledd.conf
DEBIAN_WEB_FRESH=0      # this run installed lighttpd: Debian's instance must not take :80
LEDD_BUILT=
NEW_PASSWORD=
KNOWN_PASSWORD=
PASSWORD_GENERATED=0    # this run made the password up: the summary shows it (once, on fd 3)
TMP_DIR=
ARCH=
MODEL=
KEPT=()                 # remembered settings this run applied again
PAUSE_PID=              # the test hook's sleep
JOURNAL_COPY=           # --uninstall reads this copy of the install journal
GPIO_WAS_OURS=0         # --uninstall: an older install's marker said deploy.sh created group gpio
TXN_OPEN=0              # the transaction (deploy.d/journal.sh)
RUN_JOURNAL=
PACKAGES_BEFORE=        # every package's state before this run's first apt-get (packages.sh)
OLD_DEBS_DIR=           # the .debs of the versions apt upgrades or removes in this run
APT_LOG_PENDING=        # apt-get's output not yet in the log (an interrupted apt-get)
BACKUP_DIR=
LOCAL_PIDS=()
LOCAL_RUN=
LOCAL_LEDD_LOG=
LOCAL_OWNS_RUN=0

# Print a progress line.
info() { printf '[deploy] %s\n' "$*"; }
# Print a warning on stderr.
warn() { printf '[deploy] warning: %s\n' "$*" >&2; }
# Print an error and exit 1 (the EXIT trap rolls back an open transaction).
fatal() {
	printf '[deploy] error: %s\n' "$*" >&2
	exit 1
}

# The --help text.
usage() {
	cat <<EOF
Usage: sudo ./deploy.sh [options]        install ledd + dashboard on this Pi
       ./deploy.sh --local [--port N]     run everything from the checkout (sim pins)

Install options (remembered in $DEPLOY_CONF; a plain re-run keeps them):
  --port N           HTTP port (default $DEFAULT_PORT; with --tls the HTTPS port, default $DEFAULT_TLS_PORT)
  --no-auth          no password on the dashboard (anyone on the network can
                     switch the LEDs)
  --auth             Basic auth again after --no-auth (the default)
  --tls              HTTPS with a self-signed certificate (regenerated when the
                     host name or addresses change); HTTP redirects to HTTPS
  --tls-cert FILE --tls-key FILE   HTTPS with your own certificate
  --no-tls           plain HTTP again
  --redirect-port N|off   the plain-HTTP port that redirects to HTTPS (default 80)
  --host NAME        one more name the dashboard answers to (repeatable;
                     LEDD_ALLOWED_HOSTS of the web server); --no-hosts clears them
  --backend chardev|sim   --chip CHIP   for a NEW $CONF_FILE only
$(mqtt_usage)
Password (never from the command line):
  --password-stdin   read the new Basic-auth password from stdin
  --set-password     prompt for a new password (twice)
  (default: keep the existing one, or generate one and show it once)
Other:
  --local            run ledd (sim backend, restarted if it dies) and lighttpd in
                     the foreground on 127.0.0.1:$LOCAL_PORT; Ctrl-C stops both
                     (with --mqtt URL, the bridge too)
  --dry-run          run the preflight checks and print every change without
                     making it; exits non-zero when a check fails
  --stage            install the file tree into \$DESTDIR only (no apt, users or
                     systemctl): for tests and packaging
  --uninstall        remove everything the install journal lists; keeps
                     $CONF_DIR, the LED state and the packages
  --purge            with --uninstall: also $CONF_DIR, $STATE_DIR, the log and the
                     packages deploy.sh installed (asks first unless --yes)
  -y, --yes          do not ask
  -h, --help         this help

Environment (sudo resets it: use  sudo env LEDD_LED_PINS=... ./deploy.sh):
  LEDD_WEB_USER=ledd               Basic-auth user name
  LEDD_LED_PINS="red:17,green:27"  LEDs as name:gpio (only for a NEW $CONF_FILE)
  LEDD_BUTTON_PINS="button:22"     buttons, active low with pull-up (ditto; "" = none)
  LEDD_CHIP / LEDD_BACKEND         same as --chip / --backend
  LEDD_RUNTIME_DIR=DIR             --local: runtime dir (default $LOCAL_RUNTIME_DIR)
  DESTDIR=DIR                      --stage: the staging root
  MQTT_URL=URL                     same as --mqtt URL (none: --no-mqtt)
  MQTT_PASSWORD_STDIN=1 / MQTT_SET_PASSWORD=1   same as --mqtt-password-stdin / --mqtt-set-password
  TMPDIR=DIR                       where the run keeps its backups until it ends (default /tmp)
For tests only (docs/deploy.md):
  LEDD_DEPLOY_FAIL_AT=STEP         make install step STEP fail (the run then rolls back)
  LEDD_DEPLOY_PAUSE_AT=STEP        pause before step STEP, printing the pid (to signal it there)
  LEDD_OS_RELEASE=FILE             read FILE instead of /etc/os-release

An existing $CONF_FILE and the LED state are never overwritten.
Log of every run (never a password): $LOG_FILE
EOF
}

# Fetch the value of option $1 from "$2" or fail with a clear message.
need_value() {
	[ -n "${2:-}" ] || fatal "$1 needs a value"
}

# Read the command line into MODE and the OPT_* variables.
parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--local) MODE=local ;;
		--stage) MODE=stage ;;
		--uninstall) MODE=uninstall ;;
		--purge) PURGE=1 ;;
		--dry-run) DRY_RUN=1 ;;
		-y | --yes) ASSUME_YES=1 ;;
		--no-auth) OPT_AUTH=none ;;
		--auth) OPT_AUTH=basic ;;
		--tls) OPT_TLS=self-signed ;;
		--no-tls) OPT_TLS=off ;;
		--tls-cert) need_value "$1" "${2:-}" && OPT_TLS_CERT=$2 && shift ;;
		--tls-key) need_value "$1" "${2:-}" && OPT_TLS_KEY=$2 && shift ;;
		--host) need_value "$1" "${2:-}" && OPT_HOSTS+=("$2") && shift ;;
		--no-hosts) OPT_CLEAR_HOSTS=1 ;;
		--redirect-port) need_value "$1" "${2:-}" && OPT_REDIRECT_PORT=$2 && shift ;;
		--backend) need_value "$1" "${2:-}" && BACKEND=$2 && shift ;;
		--chip) need_value "$1" "${2:-}" && CHIP=$2 && shift ;;
		--port)
			[ $# -ge 2 ] || fatal "--port needs a number"
			OPT_PORT=$2
			shift
			;;
		--port=*) OPT_PORT=${1#--port=} ;;
		--password | --password=*)
			fatal "--password PW is no longer accepted: it would stay in ps output and in your shell history. Use --set-password (prompt) or --password-stdin (e.g. from a password manager)"
			;;
		--mqtt) need_value "$1" "${2:-}" && MQTT_URL=$2 && shift ;;
		--no-mqtt) MQTT_URL=none ;;
		--mqtt-password-stdin) MQTT_PASSWORD_STDIN=1 ;;
		--mqtt-set-password) MQTT_SET_PASSWORD=1 ;;
		--password-stdin) PASSWORD_FROM=stdin ;;
		--set-password) PASSWORD_FROM=prompt ;;
		-h | --help)
			usage
			exit 0
			;;
		*) fatal "unknown option '$1' (see --help)" ;;
		esac
		shift
	done
	[ -z "${LEDD_PASSWORD:-}" ] || fatal "LEDD_PASSWORD is no longer read (it shows in ps of sudo env ...): use --password-stdin or --set-password"
	BACKEND=${BACKEND:-${LEDD_BACKEND:-}}
	CHIP=${CHIP:-${LEDD_CHIP:-}}
	if [ -n "$OPT_PORT" ]; then check_port_number "$OPT_PORT"; fi
	[[ $WEB_LOGIN =~ ^[A-Za-z0-9_.-]{1,32}$ ]] || fatal "invalid LEDD_WEB_USER '$WEB_LOGIN'"
	if [ "$PURGE" = 1 ] && [ "$MODE" != uninstall ]; then fatal "--purge only goes with --uninstall"; fi
	if [ "$MODE" = stage ] && [ -z "$DESTDIR" ]; then fatal "--stage needs DESTDIR=/some/dir"; fi
	if [ "$MODE" != stage ] && [ -n "$DESTDIR" ]; then fatal "DESTDIR is only for --stage"; fi
	if [ "$OPT_AUTH" = none ] && [ -n "$PASSWORD_FROM" ]; then fatal "--no-auth and a new password contradict each other"; fi
	if [ -n "$OPT_TLS_CERT$OPT_TLS_KEY" ]; then
		if [ -z "$OPT_TLS_CERT" ] || [ -z "$OPT_TLS_KEY" ]; then fatal "--tls-cert and --tls-key go together"; fi
		[ "$OPT_TLS" != off ] || fatal "--no-tls and --tls-cert contradict each other"
		OPT_TLS=own
	fi
	if [ -n "$BACKEND$CHIP${LEDD_LED_PINS:-}${LEDD_BUTTON_PINS+x}" ]; then CONF_OVERRIDES=1; fi
	[ -z "$BACKEND" ] || [[ $BACKEND =~ ^(chardev|sim)$ ]] || fatal "the backend must be chardev or sim"
	[[ $CHIP =~ ^[A-Za-z0-9/_.:-]*$ ]] || fatal "invalid chip '$CHIP'"
	local host
	for host in "${OPT_HOSTS[@]}"; do
		[[ $host =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] || fatal "invalid --host '$host' (a DNS name)"
	done
	if [ "$MODE" = local ]; then PORT=${OPT_PORT:-$LOCAL_PORT}; fi
	return 0
}

# Fail unless $1 is a TCP port number.
check_port_number() {
	if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
		fatal "invalid port '$1' (1-65535)"
	fi
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

# Count and print one change ("would ..." in a dry run).
note_change() {
	CHANGES=$((CHANGES + 1))
	if [ "$DRY_RUN" = 1 ]; then info "would $*"; else info "$*"; fi
}

# A group that exists on this system, else root (a staging host may lack ours).
group_or_root() {
	if getent group "$1" >/dev/null; then echo "$1"; else echo root; fi
}

# add_step NAME BEFORE: run step_NAME just before step BEFORE (for deploy.d add-ons).
add_step() {
	local steps=() step
	for step in "${INSTALL_STEPS[@]}"; do
		if [ "$step" = "$2" ]; then steps+=("$1"); fi
		steps+=("$step")
	done
	[[ " ${steps[*]} " == *" $1 "* ]] || fatal "add_step $1: no step '$2'"
	INSTALL_STEPS=("${steps[@]}")
}

# A new temporary file in this run's private directory.
tmp_file() {
	mktemp "$TMP_DIR/XXXXXX"
}

# shellcheck source=deploy.d/interrupt.sh
. "$ROOT/deploy.d/interrupt.sh"
# shellcheck source=deploy.d/journal.sh
. "$ROOT/deploy.d/journal.sh"
# shellcheck source=deploy.d/packages.sh
. "$ROOT/deploy.d/packages.sh"
# shellcheck source=deploy.d/settings.sh
. "$ROOT/deploy.d/settings.sh"
# shellcheck source=deploy.d/system.sh
. "$ROOT/deploy.d/system.sh"
# shellcheck source=deploy.d/rpi.sh
. "$ROOT/deploy.d/rpi.sh"
# shellcheck source=deploy.d/files.sh
. "$ROOT/deploy.d/files.sh"
# shellcheck source=deploy.d/web.sh
. "$ROOT/deploy.d/web.sh"
# shellcheck source=deploy.d/tls.sh
. "$ROOT/deploy.d/tls.sh"
# shellcheck source=deploy.d/uninstall.sh
. "$ROOT/deploy.d/uninstall.sh"
# shellcheck source=deploy.d/local.sh
. "$ROOT/deploy.d/local.sh"
# shellcheck source=deploy.d/mqtt.sh
. "$ROOT/deploy.d/mqtt.sh"
mqtt_register
add_step mqtt services        # the bridge's package, user, config, password and unit
add_step mqtt_start health    # started once ledd runs
# Every other deploy.d/*.sh is an add-on (e.g. mqtt.sh): sourced last, it registers its
# steps (add_step), remembered settings (register_setting) and uninstall hooks.
for part in "$ROOT"/deploy.d/*.sh; do
	# shellcheck disable=SC1090
	[[ " $CORE_PARTS " == *" ${part##*/} "* ]] || . "$part"
done
unset part

# --- Modes ------------------------------------------------------------------------

# Run each install step in order (with the test hooks).
run_steps() {
	local step
	for step in "${INSTALL_STEPS[@]}"; do
		if [ "$PAUSE_AT" = "$step" ] && [ "$DRY_RUN" = 0 ]; then
			# The sleep first: a test that signals on seeing the message finds PAUSE_PID set,
			# and the interrupt handler ends the sleep too.
			sleep 3600 &
			PAUSE_PID=$!
			info "test hook: pausing before step $step (pid $$)"
			wait "$PAUSE_PID" || true
		fi
		if [ "$FAIL_AT" = "$step" ] && [ "$DRY_RUN" = 0 ]; then fatal "test hook: step $step fails (LEDD_DEPLOY_FAIL_AT)"; fi
		"step_$step"
	done
}

# sudo ./deploy.sh: preflight, then every step inside one transaction.
do_install() {
	check_root
	detect_system
	take_lock
	load_settings
	preflight
	open_log
	read_new_password
	journal_begin
	run_steps
	save_settings_now
	journal_commit
	print_summary
}

# DESTDIR=... ./deploy.sh --stage: the same file tree as an install with the same flags, without
# touching the system (no packages, users, units started, udev or health check).
do_stage() {
	mkdir -p "$DESTDIR"
	DESTDIR=$(cd "$DESTDIR" && pwd)
	info "staging the file tree into $DESTDIR (no apt, users or services)"
	load_settings
	read_new_password
	step_build
	step_files
	step_config
	step_auth
	step_tls
	step_web_config
	step_python_entry_points
	step_mqtt
	save_settings_now
	print_summary
}

# Entry point.
main() {
	parse_args "$@"
	exec 3>&1 # the terminal: secrets go there, never into the log (open_log)
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ledd-deploy.XXXXXX")
	install_traps
	# No root-owned __pycache__ in the checkout from anything this run starts.
	export PYTHONDONTWRITEBYTECODE=1
	case $MODE in
	local) do_local ;;
	stage) do_stage ;;
	uninstall) do_uninstall ;;
	install) do_install ;;
	esac
}

# Sourced (by a test, to call one function) it only defines; run, it runs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
