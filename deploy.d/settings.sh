# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/settings.sh -- remembered choices (/etc/ledd/deploy.conf) and the preflight checks.
#
# deploy.conf holds one "key=value" per line, read as data (never sourced).
# Each key maps to a global of deploy.sh (SETTING_VARS); a part that adds an
# option (deploy.d/extra-mqtt.sh: mqtt_url=MQTT_URL) calls
# register_setting KEY VARIABLE DEFAULT and sets its variable from its flag:
# load_settings then keeps the remembered value when no flag was given and
# save_settings_now writes it back, through the journal like every file.

# The tables live in deploy.sh's globals; this only tells shellcheck their kind (no reset).
declare -A REMEMBERED SETTING_VARS SETTING_DEFAULTS

# register_setting KEY VARIABLE [DEFAULT]: one more remembered choice (for deploy.d parts).
register_setting() {
	SETTING_KEYS+=("$1")
	SETTING_VARS[$1]=$2
	SETTING_DEFAULTS[$1]=${3:-}
}

# Read deploy.conf (or, from an install made before it existed, the old lighttpd drop-in).
read_remembered() {
	local file=$DESTDIR$DEPLOY_CONF key value
	if [ -f "$file" ]; then
		while IFS='=' read -r key value; do
			case $key in '' | '#'*) continue ;; esac
			[ -n "${SETTING_VARS[$key]+x}" ] || {
				warn "$DEPLOY_CONF: unknown setting '$key' ignored"
				continue
			}
			REMEMBERED[$key]=$value
		done <"$file"
		return 0
	fi
	# deploy.sh before deploy.conf: the port was in lighttpd's drop-in, the auth mode in auth.conf.
	if [ -f "$DESTDIR$LEGACY_DROPIN" ]; then
		value=$(sed -n 's/.*LEDD_HTTP_PORT=\([0-9]*\).*/\1/p' "$DESTDIR$LEGACY_DROPIN" | head -n 1)
		if [ -n "$value" ]; then REMEMBERED[port]=$value; fi
		if grep -qs 'authentication disabled' "$DESTDIR$AUTH_SNIPPET"; then REMEMBERED[auth]=none; else REMEMBERED[auth]=basic; fi
		info "settings: taken over from the previous install (port ${REMEMBERED[port]:-80}, auth ${REMEMBERED[auth]})"
	fi
}

# Decide every setting: the flag, else the remembered value (reported as kept), else the default.
load_settings() {
	local key var
	read_remembered
	if [ ${#OPT_HOSTS[@]} -gt 0 ]; then
		OPT_HOSTS_LINE=$(printf '%s\n' "${REMEMBERED[hosts]:-}" "${OPT_HOSTS[@]}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | xargs)
	elif [ "$OPT_CLEAR_HOSTS" = 1 ]; then
		OPT_HOSTS_LINE=
		REMEMBERED[hosts]=
	fi
	if [ "$OPT_TLS" = off ] || [ "$OPT_TLS" = self-signed ]; then
		REMEMBERED[tls_cert]=
		REMEMBERED[tls_key]=
	fi
	# Switching TLS on or off without --port: the default port of the new mode, not the old one's.
	if [ -n "$OPT_TLS" ] && [ "$OPT_TLS" != "${REMEMBERED[tls]:-off}" ] &&
		{ [ "${REMEMBERED[port]:-}" = "$DEFAULT_PORT" ] || [ "${REMEMBERED[port]:-}" = "$DEFAULT_TLS_PORT" ]; }; then
		REMEMBERED[port]=
	fi
	for key in "${SETTING_KEYS[@]}"; do
		var=${SETTING_VARS[$key]}
		if [ -n "${!var}" ]; then continue; fi
		if [ -n "${REMEMBERED[$key]:-}" ]; then
			printf -v "$var" '%s' "${REMEMBERED[$key]}"
			KEPT+=("$key=${REMEMBERED[$key]}")
		else
			printf -v "$var" '%s' "${SETTING_DEFAULTS[$key]:-}"
		fi
	done
	AUTH=$OPT_AUTH
	TLS=$OPT_TLS
	TLS_CERT_SRC=$OPT_TLS_CERT
	TLS_KEY_SRC=$OPT_TLS_KEY
	HOSTS=$OPT_HOSTS_LINE
	if [ -n "$OPT_PORT" ]; then
		PORT=$OPT_PORT
	elif [ "$TLS" != off ]; then PORT=$DEFAULT_TLS_PORT; else PORT=$DEFAULT_PORT; fi
	OPT_PORT=$PORT # remembered as chosen
	check_port_number "$PORT"
	[ "$OPT_REDIRECT_PORT" = off ] || check_port_number "$OPT_REDIRECT_PORT"
	if [ ${#KEPT[@]} -gt 0 ]; then
		info "settings kept from the last run ($DEPLOY_CONF; a flag changes them): ${KEPT[*]}"
	fi
}

# The deploy.conf text for the settings of this run.
render_settings() {
	local key var
	printf '# %s -- the choices of the last successful deploy.sh run, applied again by a\n' "$DEPLOY_CONF"
	printf '# plain re-run (a flag overrides one). Written by deploy.sh; key=value, not sourced.\n'
	for key in "${SETTING_KEYS[@]}"; do
		var=${SETTING_VARS[$key]}
		printf '%s=%s\n' "$key" "${!var}"
	done
}

# Write deploy.conf (journaled, so a failed run leaves the old one).
save_settings_now() {
	local conf
	conf=$(tmp_file)
	render_settings >"$conf"
	put_file "$conf" "$DEPLOY_CONF" 0644 root root
}

# The program listening on TCP port $1 as "name (pid N, unit U)", or nothing.
port_holder() {
	local line pid name unit
	if ! command -v ss >/dev/null; then
		# No ss (iproute2): the kernel's socket tables still say whether someone listens.
		if port_listened "$1"; then echo "a program (install iproute2 for ss to name it)"; fi
		return 0
	fi
	line=$(ss -Hltnp "( sport = :$1 )" 2>/dev/null | head -n 1) || true
	[ -n "$line" ] || return 0
	pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line" | head -n 1)
	name=$(sed -n 's/.*users:(("\([^"]*\)".*/\1/p' <<<"$line")
	unit=$(sed -n 's#^0::.*/\([^/]*\.service\)$#\1#p' "/proc/$pid/cgroup" 2>/dev/null || true)
	echo "${name:-a program} (pid ${pid:-?}${unit:+, $unit})"
}

# Whether a TCP socket listens on port $1, from $PROC_NET_TCP (state 0A = LISTEN).
port_listened() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v port=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit !found }' \
		"${PROC_NET_TCP[@]}" 2>/dev/null
}

# True when the port's holder is our own web server (this install, or one from before ledd-web).
port_is_ours() {
	local holder=$1
	case $holder in
	*", $WEB_UNIT)") return 0 ;;
	*", $DEBIAN_WEB_UNIT)") [ -f "$LEGACY_DROPIN" ] ;;
	*) return 1 ;;
	esac
}

# The first free port from $1 up (for the suggestion).
free_port_from() {
	local p=$1
	while [ -n "$(port_holder "$p")" ]; do p=$((p + 1)); done
	echo "$p"
}

# Checks that must pass before anything changes (run by --dry-run too, which then exits 1).
preflight() {
	local holder
	holder=$(port_holder "$PORT")
	if [ -n "$holder" ] && ! port_is_ours "$holder"; then
		fatal "port $PORT is in use by $holder; nothing was changed. Choose another port: sudo ./deploy.sh --port $(free_port_from 8080)"
	fi
	if [ "$TLS" != off ] && [ "$OPT_REDIRECT_PORT" != off ]; then
		holder=$(port_holder "$OPT_REDIRECT_PORT")
		if [ -n "$holder" ] && ! port_is_ours "$holder"; then
			fatal "port $OPT_REDIRECT_PORT (plain HTTP redirecting to HTTPS) is in use by $holder; nothing was changed. Choose another redirect port, or none: sudo ./deploy.sh --redirect-port $(free_port_from 8080) (or --redirect-port off)"
		fi
	fi
	if [ "$TLS" = own ]; then
		[ -r "$TLS_CERT_SRC" ] || fatal "--tls-cert $TLS_CERT_SRC: cannot read it"
		[ -r "$TLS_KEY_SRC" ] || fatal "--tls-key $TLS_KEY_SRC: cannot read it"
	fi
	mqtt_preflight
	check_boot_config
	info "preflight: port $PORT is free (or ours)${KEPT:+; settings kept}"
}
