# shellcheck shell=bash
# deploy.d/mqtt.sh -- the MQTT bridge (ledd-mqtt): install, remove, and the local run's bridge.
#
# Sourced by deploy.sh. Self-contained functions; deploy.sh calls them for
#   sudo ./deploy.sh --mqtt mqtt://[USER@]BROKER[:PORT]     (or mqtts://)
#   sudo ./deploy.sh --no-mqtt                               (remove the bridge, keep the rest)
#   ./deploy.sh --local --mqtt mqtt://127.0.0.1:PORT         (the bridge beside the local stack)
#
# What deploy.sh provides (its globals and helpers):
#   info MSG / warn MSG / fatal MSG   messages; fatal exits 1 (the EXIT trap rolls back)
#   note_change MSG                   count and print one change ("would ..." when DRY_RUN=1)
#   run CMD...                        run CMD, or only print it when DRY_RUN=1
#   journal TYPE ARGS...              record a change for rollback and --uninstall; types used here:
#                                     file PATH BACKUP|-, dir PATH, user NAME, userdel NAME ENTRY, package NAME,
#                                     stop UNIT, disable UNIT,
#                                     enable UNIT, start UNIT, restart UNIT
#   put_file SRC DEST MODE OWNER GROUP [FLAG]   compare, back up, journal, install; FLAG=1 on change
#   put_dir DIR MODE OWNER GROUP      create or fix a directory (journaled)
#   remove_path PATH                  delete (backed up in a transaction)
#   install_missing_packages PKG...  apt-get install those missing (lists updated if stale; journaled)
#   start_unit UNIT CHANGED           enable; start, or restart when CHANGED=1 (journaled)
#   register_setting KEY VAR [DEFAULT]  a remembered choice in /etc/ledd/deploy.conf
#   tmp_file                          a new file under $TMP_DIR (removed at exit)
#   globals: ROOT DRY_RUN DESTDIR TMP_DIR LEDD_HOME_DIR CONF_DIR UNIT_DIR DAEMON_USER PYTHON
#            RELOAD_SYSTEMD, and for --local: LOCAL_RUN LOCAL_PIDS
#
# Wiring in deploy.sh (done by the lead once the deploy rework is merged):
#   . "$ROOT/deploy.d/mqtt.sh"; mqtt_register          at start-up (remembered setting mqtt_url)
#   --mqtt URL) MQTT_URL=$2 ;;  --no-mqtt) MQTT_URL=none ;;
#   --mqtt-password-stdin) MQTT_PASSWORD_STDIN=1 ;;  --mqtt-set-password) MQTT_SET_PASSWORD=1 ;;
#   preflight:        mqtt_preflight           (also in --dry-run)
#   install, after the ledd unit is installed and before services start:   mqtt_install
#   after ledd and the web server run:                                      mqtt_start
#   --uninstall: the install journal already lists what mqtt_install created; nothing else.
#   summary:          mqtt_summary
#   --local:          mqtt_local_start after ledd is ready (its PID joins LOCAL_PIDS);
#                     mqtt_local_cleanup from local_stop.
#   usage text:       mqtt_usage

MQTT_UNIT=ledd-mqtt.service
MQTT_USER=ledd-mqtt
MQTT_PACKAGES=(python3-paho-mqtt)
MQTT_CONF_NAME=mqtt.conf
MQTT_CREDENTIAL_DIR_NAME=credentials
MQTT_CREDENTIAL_NAME=mqtt-password # LoadCredential= in systemd/ledd-mqtt.service, ledd.defaults
MQTT_URL_RE='^mqtts?://([A-Za-z0-9._%-]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?/?$'
MQTT_URL=${MQTT_URL:-}
MQTT_PASSWORD_STDIN=${MQTT_PASSWORD_STDIN:-0}
MQTT_SET_PASSWORD=${MQTT_SET_PASSWORD:-0}
MQTT_RESTART=0
MQTT_LOCAL_SECRET=
MQTT_LOCAL_RESTART_S=2 # --local: the bridge's supervisor waits like ledd-mqtt.service's RestartSec
LOCAL_MQTT_SUP=        # --local: the pid of the bridge's supervisor

# Options for deploy.sh's --help.
mqtt_usage() {
	cat <<'EOF'
  --mqtt URL              bridge the LEDs and buttons to an MQTT broker (ledd-mqtt, Home Assistant
                          discovery): mqtt://[USER@]HOST[:PORT] or mqtts://...; asks for the password
  --no-mqtt               remove the bridge (the rest stays)
  --mqtt-password-stdin   read the broker password from stdin instead of asking
  --mqtt-set-password     ask for the broker password again
EOF
}

# Remember --mqtt in /etc/ledd/deploy.conf like the other options.
mqtt_register() {
	register_setting mqtt_url MQTT_URL ""
}

# Is the bridge wanted in this run?
mqtt_wanted() {
	[ -n "$MQTT_URL" ] && [ "$MQTT_URL" != none ]
}

# The user part of mqtt://USER@HOST, or nothing.
mqtt_url_user() {
	local rest=${1#*://}
	rest=${rest%%/*}
	case $rest in *@*) printf '%s\n' "${rest%%@*}" ;; esac
}

# Refuse a malformed URL or one carrying a password, before any change.
mqtt_preflight() {
	mqtt_wanted || return 0
	case $MQTT_URL in
	*://*:*@*) fatal "--mqtt: the URL carries a password; give mqtt://USER@HOST and deploy.sh asks for it (no echo)" ;;
	esac
	[[ $MQTT_URL =~ $MQTT_URL_RE ]] ||
		fatal "--mqtt: '$MQTT_URL' is not mqtt://[USER@]HOST[:PORT] or mqtts://[USER@]HOST[:PORT]"
}

# Step: python3-paho-mqtt, journaled with what apt pulled in.
mqtt_step_packages() {
	install_missing_packages "${MQTT_PACKAGES[@]}"
}

# Step: the system user ledd-mqtt, primary group ledd (opens /run/ledd, nothing else).
mqtt_step_user() {
	getent passwd "$MQTT_USER" >/dev/null && return 0
	note_change "create system user $MQTT_USER (group $DAEMON_USER)"
	run useradd --system --gid "$DAEMON_USER" --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "ledd MQTT bridge" "$MQTT_USER"
	journal user "$MQTT_USER"
}

# Print mqtt.conf for URL: the current file (or the shipped example) with its url line replaced.
mqtt_render_config() {
	local current=$DESTDIR$CONF_DIR/$MQTT_CONF_NAME
	[ -f "$current" ] || current=$ROOT/systemd/mqtt.conf.example
	awk -v url="$MQTT_URL" '
		/^\[/ { section = $0 }
		section == "[broker]" && /^[ \t]*url[ \t]*=/ && !done { print "url = " url; done = 1; next }
		{ print }
		END { if (!done) exit 3 }
	' "$current"
}

# Step: /etc/ledd/mqtt.conf (only the url line is ours: other edits are kept).
mqtt_step_config() {
	local out
	out=$(tmp_file)
	mqtt_render_config >"$out" || fatal "$CONF_DIR/$MQTT_CONF_NAME has no url line in [broker]; fix or remove it"
	put_file "$out" "$CONF_DIR/$MQTT_CONF_NAME" 0644 root root MQTT_RESTART
}

# Read the broker password without echo (or from stdin with --mqtt-password-stdin) into file $1.
mqtt_read_password() {
	local out=$1 secret=
	if [ "$MQTT_PASSWORD_STDIN" = 1 ]; then
		IFS= read -r secret || true
	elif [ -t 0 ] || { [ -r /dev/tty ] && : </dev/tty; } 2>/dev/null; then
		IFS= read -rs -p "[deploy] password of $(mqtt_url_user "$MQTT_URL") on the MQTT broker (empty: none): " secret </dev/tty
		printf '\n' >&2
	else
		warn "no terminal to ask for the MQTT password: none stored (use --mqtt-password-stdin)"
	fi
	(umask 077 && printf '%s\n' "$secret" >"$out")
	secret=
}

# Step: the password as a root-only file that systemd hands to the bridge (LoadCredential=).
mqtt_step_password() {
	local dir=$CONF_DIR/$MQTT_CREDENTIAL_DIR_NAME out
	local file=$dir/$MQTT_CREDENTIAL_NAME
	put_dir "$dir" 0700 root root
	if [ -f "$DESTDIR$file" ] && [ "$MQTT_SET_PASSWORD" != 1 ] && [ "$MQTT_PASSWORD_STDIN" != 1 ]; then
		info "MQTT password: kept ($file; --mqtt-set-password to change it)"
		return 0
	fi
	[ "$DRY_RUN" = 1 ] && {
		note_change "ask for the MQTT password and store it in $file (0600 root)"
		return 0
	}
	out=$(tmp_file)
	if [ -n "$(mqtt_url_user "$MQTT_URL")" ]; then mqtt_read_password "$out"; else : >"$out"; fi
	put_file "$out" "$file" 0600 root root MQTT_RESTART
	rm -f "$out"
}

# Step: the unit file.
mqtt_step_unit() {
	put_file "$ROOT/systemd/$MQTT_UNIT" "$UNIT_DIR/$MQTT_UNIT" 0644 root root MQTT_RESTART
	if [ "$MQTT_RESTART" = 1 ]; then RELOAD_SYSTEMD=1; fi
}

# Step mqtt: install or update the bridge (before the services start). Nothing without --mqtt.
step_mqtt() {
	mqtt_install
}

# Step mqtt_start: the bridge, once ledd runs.
step_mqtt_start() {
	mqtt_start
}

# Install or update the bridge (before the services start). Does nothing without --mqtt.
mqtt_install() {
	mqtt_wanted || {
		if [ "$MQTT_URL" = none ]; then mqtt_remove; fi
		return 0
	}
	if [ "$MODE" != stage ]; then
		mqtt_step_packages
		mqtt_step_user
	fi
	mqtt_step_config
	mqtt_step_password
	mqtt_step_unit
}

# Enable and (re)start the bridge once ledd runs; a bad config fails here with its file:line.
mqtt_start() {
	mqtt_wanted || return 0
	if [ "$RELOAD_SYSTEMD" = 1 ]; then run systemctl daemon-reload; fi
	start_unit "$MQTT_UNIT" "$MQTT_RESTART"
}

# --no-mqtt: stop and disable the bridge, remove its unit, config and password, and its user.
# (All of it comes back on a rollback: the files from their backups, the user from its passwd line.)
mqtt_remove() {
	local entry
	if [ "$MODE" = stage ]; then
		remove_path "$UNIT_DIR/$MQTT_UNIT"
		remove_path "$CONF_DIR/$MQTT_CONF_NAME"
		remove_path "$CONF_DIR/$MQTT_CREDENTIAL_DIR_NAME/$MQTT_CREDENTIAL_NAME"
		return 0
	fi
	if systemctl is-active --quiet "$MQTT_UNIT" 2>/dev/null; then
		note_change "stop $MQTT_UNIT"
		journal stop "$MQTT_UNIT"
		run systemctl stop "$MQTT_UNIT"
	fi
	if systemctl is-enabled --quiet "$MQTT_UNIT" 2>/dev/null; then
		note_change "disable $MQTT_UNIT"
		journal disable "$MQTT_UNIT"
		run systemctl disable --quiet "$MQTT_UNIT"
	fi
	remove_path "$UNIT_DIR/$MQTT_UNIT"
	remove_path "$CONF_DIR/$MQTT_CONF_NAME"
	remove_path "$CONF_DIR/$MQTT_CREDENTIAL_DIR_NAME/$MQTT_CREDENTIAL_NAME"
	RELOAD_SYSTEMD=1
	if entry=$(getent passwd "$MQTT_USER"); then
		note_change "delete system user $MQTT_USER"
		run userdel "$MQTT_USER"
		journal userdel "$MQTT_USER" "$entry"
	fi
}

# Lines for the final summary.
mqtt_summary() {
	mqtt_wanted || return 0
	local base
	base=$(sed -n 's/^[ \t]*base_topic[ \t]*=[ \t]*\([^ \t#]*\).*/\1/p' "$DESTDIR$CONF_DIR/$MQTT_CONF_NAME" 2>/dev/null | head -n 1)
	info "MQTT: $MQTT_UNIT -> $MQTT_URL, topics under ${base:-ledd/$(hostname -s)}/ (config $CONF_DIR/$MQTT_CONF_NAME)"
	info "      watch them: mosquitto_sub -h BROKER -u USER -P ... -t '${base:-ledd/$(hostname -s)}/#' -v"
}

# --local --mqtt URL: run the bridge beside the local ledd (no install, no root needed).
mqtt_local_start() {
	local conf=$LOCAL_RUN/$MQTT_CONF_NAME log=$LOCAL_RUN/ledd-mqtt.log pid
	mqtt_preflight
	"$PYTHON" -c 'import paho.mqtt.client' 2>/dev/null ||
		fatal "--mqtt needs paho-mqtt: sudo apt-get install ${MQTT_PACKAGES[*]}"
	MQTT_LOCAL_SECRET=$LOCAL_RUN/$MQTT_CREDENTIAL_NAME
	if [ -n "$(mqtt_url_user "$MQTT_URL")" ]; then
		mqtt_read_password "$MQTT_LOCAL_SECRET"
	else
		(umask 077 && : >"$MQTT_LOCAL_SECRET")
	fi
	{
		printf '# Written by ./deploy.sh --local --mqtt; see docs/mqtt.md.\n[broker]\nurl = %s\n' "$MQTT_URL"
		printf 'password_file = %s\n[bridge]\nbase_topic = ledd/%s-local\ndevice_id = %s_local\n' \
			"$MQTT_LOCAL_SECRET" "$(hostname -s)" "$(hostname -s | tr -c 'A-Za-z0-9_\n-' _)"
	} >"$conf"
	"$PYTHON" "$ROOT/bin/ledd-mqtt" --check-config -c "$conf" >/dev/null || fatal "ledd-mqtt refuses $conf (above)"
	# Supervised like ledd-mqtt.service (Restart=on-failure, RestartSec=2s); its end is not the run's.
	: >"$log"
	local_supervise ledd-mqtt "$log" "$MQTT_LOCAL_RESTART_S" "ledd and lighttpd keep running" \
		"$PYTHON" "$ROOT/bin/ledd-mqtt" -c "$conf" -r "$LOCAL_RUN" &
	pid=$!
	# shellcheck disable=SC2034 # read by do_local (deploy.d/local.sh)
	LOCAL_MQTT_SUP=$pid
	LOCAL_PIDS+=("$pid")
	info "ledd-mqtt is running (restarted if it fails) -> $MQTT_URL, topics under ledd/$(hostname -s)-local/, log $log"
}

# From local_stop: the local password file has no further use.
mqtt_local_cleanup() {
	if [ -n "$MQTT_LOCAL_SECRET" ]; then rm -f "$MQTT_LOCAL_SECRET"; fi
}
