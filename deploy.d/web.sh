# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/web.sh -- the web side: password, ledd-web.service's environment and
# snippets, Debian's lighttpd instance, services, health check and summary.
#
# Sourced by deploy.sh. ledd-web.service (systemd/ledd-web.service) is our own
# lighttpd instance running /opt/ledd/lighttpd.conf as user ledd-web; all it
# needs from this run comes through $WEB_ENV_FILE (EnvironmentFile=) and the
# snippet lighttpd.conf includes last ($SITE_SNIPPET, which includes $AUTH_SNIPPET).

# Read a new password from stdin (--password-stdin) or the terminal (--set-password).
read_new_password() {
	local again=
	case $PASSWORD_FROM in
	stdin)
		IFS= read -r NEW_PASSWORD || [ -n "$NEW_PASSWORD" ] || fatal "--password-stdin: nothing on stdin"
		;;
	prompt)
		[ -r /dev/tty ] || fatal "--set-password needs a terminal (or use --password-stdin)"
		IFS= read -rs -p "New dashboard password for '$WEB_LOGIN': " NEW_PASSWORD </dev/tty
		echo >&2
		IFS= read -rs -p "Again: " again </dev/tty
		echo >&2
		[ "$NEW_PASSWORD" = "$again" ] || fatal "the two passwords differ; nothing was changed"
		;;
	*) return 0 ;;
	esac
	[ ${#NEW_PASSWORD} -ge 8 ] || fatal "the password needs at least 8 characters"
	KNOWN_PASSWORD=$NEW_PASSWORD
}

# 16 characters from [A-Za-z0-9]: ~95 bits. (A finite input: with pipefail,
# `tr </dev/urandom | head` would fail on tr's SIGPIPE.)
random_password() {
	head -c 4096 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | cut -c 1-16
}

# Step: Basic auth (bcrypt htpasswd + the snippet lighttpd.conf includes), or none.
step_auth() {
	local snippet
	snippet=$(tmp_file)
	put_dir "$WEB_CONF_DIR" 0755 root root
	if [ "$AUTH" = none ]; then
		echo "# ledd: authentication disabled (deploy.sh --no-auth)" >"$snippet"
		put_file "$snippet" "$AUTH_SNIPPET" 0644 root root RESTART_WEB
		remove_path "$HTPASSWD_FILE"
		return 0
	fi
	update_htpasswd
	cat >"$snippet" <<EOF
# ledd: HTTP Basic auth for the whole site, written by deploy.sh (mod_auth is
# loaded by lighttpd.conf). The password is stored only as a bcrypt hash in
# $HTPASSWD_FILE; change it with: sudo $LEDD_HOME_DIR/deploy.sh --set-password
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "$HTPASSWD_FILE"
auth.require = ("/" => ("method" => "basic", "realm" => "ledd", "require" => "valid-user"))
EOF
	put_file "$snippet" "$AUTH_SNIPPET" 0644 root root RESTART_WEB
}

# Keep the existing hash, or write a new one (the given or a generated password).
update_htpasswd() {
	local file=$DESTDIR$HTPASSWD_FILE web_group hashed
	web_group=$(group_or_root "$WEB_USER")
	if [ -f "$file" ] && grep -q "^$WEB_LOGIN:" "$file"; then
		if [ -z "$NEW_PASSWORD" ]; then
			info "auth: keeping the existing password of '$WEB_LOGIN' (--set-password to change it)"
			put_mode "$HTPASSWD_FILE" 0640 root "$web_group"
			return 0
		fi
		if htpasswd -vi "$file" "$WEB_LOGIN" <<<"$NEW_PASSWORD" >/dev/null 2>&1; then
			info "auth: password of '$WEB_LOGIN' unchanged"
			NEW_PASSWORD=
			put_mode "$HTPASSWD_FILE" 0640 root "$web_group"
			return 0
		fi
	fi
	if [ -z "$NEW_PASSWORD" ]; then
		NEW_PASSWORD=$(random_password)
		PASSWORD_GENERATED=1
	fi
	KNOWN_PASSWORD=$NEW_PASSWORD
	if [ "$DRY_RUN" = 1 ] && ! command -v htpasswd >/dev/null; then
		note_change "set the password of '$WEB_LOGIN' (bcrypt) in $HTPASSWD_FILE"
		return 0
	fi
	hashed=$(tmp_file)
	htpasswd -ciB "$hashed" "$WEB_LOGIN" <<<"$NEW_PASSWORD" 2>/dev/null ||
		fatal "htpasswd -B failed (is apache2-utils installed?)"
	put_file "$hashed" "$HTPASSWD_FILE" 0640 root "$web_group" RESTART_WEB
}

# put_mode PATH MODE OWNER GROUP: fix the metadata of a file we keep.
put_mode() {
	local path=$DESTDIR$1
	[ "$(stat -c '%a %U %G' "$path")" = "${2#0} $3 $4" ] && return 0
	note_change "chmod/chown $1"
	[ "$DRY_RUN" = 1 ] && return 0
	journal file "$path" "$(backup_of "$path")"
	chown "$3:$4" "$path" && chmod "$2" "$path"
}

# The environment of ledd-web.service (and of `lighttpd -tt` here), as an EnvironmentFile.
render_web_env() {
	cat <<EOF
# ledd-web.service's environment, written by deploy.sh from $DEPLOY_CONF.
# Read by /opt/ledd/lighttpd.conf (env.LEDD_*). Change it with deploy.sh flags.
LEDD_HOME=$LEDD_HOME_DIR
LEDD_HTTP_BIND=0.0.0.0
LEDD_HTTP_PORT=$PORT
LEDD_RUNTIME_DIR=$RUNTIME_DIR
LEDD_WEB_STATE_DIR=$WEB_STATE_DIR
LEDD_AUTH_INCLUDE=$SITE_SNIPPET
LEDD_ALLOWED_HOSTS="$HOSTS"
EOF
}

# The site snippet: IPv6 next to IPv4, and with TLS the certificate and the HTTP redirect.
render_site() {
	local ssl=
	printf '# ledd: listening sockets, TLS and auth; written by deploy.sh, included last by lighttpd.conf.\n'
	if [ "$TLS" != off ]; then
		ssl='ssl.engine = "enable" '
		printf 'server.modules += ("mod_openssl")\n'
		printf '# HTTPS on server.bind (0.0.0.0:%s) and on IPv6\n' "$PORT"
		printf 'ssl.engine = "enable"\nssl.pemfile = "%s"\nssl.privkey = "%s"\n' "$TLS_CERT" "$TLS_KEY"
	fi
	if ipv6_available; then
		# shellcheck disable=SC2016 # lighttpd's $SERVER, not the shell's
		printf '$SERVER["socket"] == "[::]:%s" { %s}\n' "$PORT" "$ssl"
	else
		printf '# no IPv6 on this kernel (%s): IPv4 only\n' "$IPV6_SWITCH"
	fi
	if [ "$TLS" != off ] && [ "$OPT_REDIRECT_PORT" != off ]; then render_redirect; fi
	printf 'include "%s"\n' "$AUTH_SNIPPET"
}

# Whether this kernel has IPv6 turned on (disabled by ipv6.disable=1, or the sysctl: binding [::] would fail).
ipv6_available() {
	[ "$(cat "$IPV6_SWITCH" 2>/dev/null)" = 0 ]
}

# Plain HTTP on the redirect port (IPv4 and IPv6) answers 308 to the same URL on HTTPS.
render_redirect() {
	local sock target="https://%1:$PORT"
	if [ "$PORT" = 443 ]; then target="https://%1"; fi
	local socks=("0.0.0.0:$OPT_REDIRECT_PORT")
	if ipv6_available; then socks+=("[::]:$OPT_REDIRECT_PORT"); fi
	for sock in "${socks[@]}"; do
		cat <<EOF
\$SERVER["socket"] == "$sock" {
	ssl.engine = "disable"
	\$HTTP["host"] =~ "^(\\[[^]]*\\]|[^:]*)(:[0-9]+)?\$" {
		url.redirect = ("" => "$target\${url.path}\${qsa}")
		url.redirect-code = 308
	}
}
EOF
	done
}

# Step: web.env and site.conf.
step_web_config() {
	local envfile site
	envfile=$(tmp_file)
	site=$(tmp_file)
	render_web_env >"$envfile"
	render_site >"$site"
	put_dir "$WEB_CONF_DIR" 0755 root root
	put_dir "$WEB_STATE_DIR" 0750 "$(id -u "$WEB_USER" >/dev/null 2>&1 && echo "$WEB_USER" || echo root)" \
		"$(group_or_root "$WEB_USER")"
	generate_board_json
	put_file "$envfile" "$WEB_ENV_FILE" 0644 root root RESTART_WEB
	put_file "$site" "$SITE_SNIPPET" 0644 root root RESTART_WEB
}

# "enabled active" etc.: the state of a unit, for the journal.
unit_state() {
	local enabled=disabled active=inactive
	if systemctl is-enabled --quiet "$1" 2>/dev/null; then enabled=enabled; fi
	if systemctl is-active --quiet "$1" 2>/dev/null; then active=active; fi
	echo "$enabled $active"
}

# quiet_debian_web WHY [EARLIER_STATE]: stop and disable Debian's lighttpd instance
# (journaled with the state to restore, so rollback and --uninstall put it back).
quiet_debian_web() {
	local why=$1 state
	state=$(unit_state "$DEBIAN_WEB_UNIT")
	grep -qs "^debian-web"$'\t' "$INSTALL_JOURNAL" || journal debian-web "${2:-$state}"
	if [[ $state == *" active" ]]; then
		note_change "stop $DEBIAN_WEB_UNIT ($why)"
		journal stop "$DEBIAN_WEB_UNIT"
		run systemctl stop "$DEBIAN_WEB_UNIT"
	fi
	if [[ $state == "enabled "* ]]; then
		note_change "disable $DEBIAN_WEB_UNIT ($why)"
		journal disable "$DEBIAN_WEB_UNIT"
		run systemctl disable --quiet "$DEBIAN_WEB_UNIT"
	fi
}

# Step: a lighttpd package installed by this run brings Debian's placeholder site on :80,
# and an install from before ledd-web ran our site through a drop-in for lighttpd.service.
step_legacy_migration() {
	if [ -f "$LEGACY_DROPIN" ]; then
		remove_path "$LEGACY_DROPIN"
		remove_empty_dir "$(dirname "$LEGACY_DROPIN")"
		RELOAD_SYSTEMD=1
		if [ "$PORT" = "$DEFAULT_PORT" ] || { [ "$TLS" != off ] && [ "$OPT_REDIRECT_PORT" = "$DEFAULT_PORT" ]; }; then
			# Debian's own site would take the port ledd-web needs: keep it off (recorded for --uninstall).
			quiet_debian_web "it served ledd through the old drop-in; ledd-web.service does now"
		elif systemctl is-active --quiet "$DEBIAN_WEB_UNIT"; then
			# The old drop-in had taken Debian's instance over: give it back its own site.
			note_change "restart $DEBIAN_WEB_UNIT with Debian's own configuration (ledd moves to ledd-web.service)"
			journal restart "$DEBIAN_WEB_UNIT"
			run systemctl daemon-reload
			run systemctl restart "$DEBIAN_WEB_UNIT"
		fi
	elif [ "$DEBIAN_WEB_FRESH" = 1 ]; then
		quiet_debian_web "deploy.sh installed lighttpd: its placeholder site would take port 80" "disabled inactive"
	fi
}

# Step: lighttpd -tt with ledd-web's exact environment, before anything restarts.
step_validate() {
	[ "$DRY_RUN" = 1 ] && return 0
	if ! (
		set -a
		# shellcheck disable=SC1090 # written by render_web_env
		. "$WEB_ENV_FILE"
		exec "$LIGHTTPD" -tt -f "$LEDD_HOME_DIR/lighttpd.conf"
	) >"$TMP_DIR/lighttpd-tt.log" 2>&1; then
		cat "$TMP_DIR/lighttpd-tt.log" >&2
		fatal "lighttpd rejects the new configuration (lighttpd -tt above)"
	fi
}

# Step: daemon-reload, then enable and (re)start ledd and ledd-web as needed.
step_services() {
	if [ "$RELOAD_SYSTEMD" = 1 ]; then run systemctl daemon-reload; fi
	# systemd creates ledd's StateDirectory at the first start: ours, for a rollback too.
	if [ ! -d "$STATE_DIR" ]; then journal dir "$STATE_DIR"; fi
	start_unit "$LEDD_UNIT" "$RESTART_LEDD"
	start_unit "$WEB_UNIT" "$RESTART_WEB"
}

# start_unit UNIT CHANGED: enable it; start it if stopped, restart it if its inputs changed.
start_unit() {
	local unit=$1 changed=$2
	if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
		note_change "enable $unit"
		journal enable "$unit"
		run systemctl enable --quiet "$unit"
	fi
	if ! systemctl is-active --quiet "$unit"; then
		note_change "start $unit"
		journal start "$unit"
		run systemctl restart "$unit" || service_failed "$unit"
	elif [ "$changed" = 1 ]; then
		note_change "restart $unit"
		journal restart "$unit"
		run systemctl restart "$unit" || service_failed "$unit"
	else
		info "$unit: running, unchanged"
	fi
}

# Show why UNIT failed, then fail.
service_failed() {
	warn "$1 did not start:"
	systemctl --no-pager --lines=0 status "$1" >&2 || true
	journalctl --no-pager -n 25 -u "$1" >&2 || true
	fatal "$1 failed to start (journalctl -u $1 for more)"
}

# Step: GET /api/state through ledd-web (ledd/health.py); the password goes through stdin.
# It runs as ledd-web with that user's groups: when the password is not known (a re-run that
# kept it), the web server's 401 plus ledd's answer over the FIFOs to *that* user is what proves
# the dashboard works (as root, the FIFOs answer whatever their group and mode).
step_health() {
	[ "$DRY_RUN" = 1 ] && return 0
	local scheme=http out args=()
	if [ "$TLS" != off ]; then scheme=https; fi
	if [ "$TLS" = self-signed ]; then args+=(--cafile "$TLS_CERT"); fi
	if [ "$TLS" = own ]; then args+=(--insecure); fi
	if [ "$AUTH" = none ]; then args+=(--no-auth); fi
	info "health check: GET $scheme://127.0.0.1:$PORT/api/state"
	# A here-string, not printf into a pipe: under pipefail, printf's SIGPIPE (the checker exited
	# before reading, e.g. with --no-auth) would fail a healthy check.
	if out=$(cd / && PYTHONPATH=$LEDD_HOME_DIR \
		setpriv --reuid="$WEB_USER" --regid="$WEB_USER" --init-groups -- "$PYTHON" -B -m ledd.health \
		--url "$scheme://127.0.0.1:$PORT/api/state" --login "$WEB_LOGIN" --timeout "$HEALTH_TIMEOUT_S" \
		--runtime-dir "$RUNTIME_DIR" "${args[@]}" <<<"$KNOWN_PASSWORD" 2>&1); then
		info "health check: $out"
		return 0
	fi
	warn "health check failed: $out"
	diagnose
	fatal "the dashboard does not work (diagnosis above; log in $LOG_FILE)"
}

# What an owner needs to see when the health check fails.
diagnose() {
	local unit
	for unit in "$LEDD_UNIT" "$WEB_UNIT"; do
		printf '\n--- systemctl status %s\n' "$unit" >&2
		systemctl --no-pager --lines=15 status "$unit" >&2 || true
	done
	printf '\n--- %s\n' "$RUNTIME_DIR" >&2
	ls -la "$RUNTIME_DIR" >&2 || true
	printf '\n--- groups: %s\n' "$(id "$WEB_USER" 2>&1)" >&2
	ls -l /dev/gpiochip* >&2 2>/dev/null || printf 'no /dev/gpiochip* on this system\n' >&2
}

# The dashboard's URLs: every address, and hostname.local only when avahi announces it.
dashboard_urls() {
	local scheme=http addr default=80 suffix=
	if [ "$TLS" != off ]; then scheme=https default=443; fi
	if [ "$PORT" != "$default" ]; then suffix=:$PORT; fi
	for addr in $(hostname -I 2>/dev/null); do
		case $addr in
		fe80:*) continue ;;
		*:*) addr="[$addr]" ;;
		esac
		echo "$scheme://$addr$suffix/"
	done
	if systemctl is-active --quiet avahi-daemon 2>/dev/null; then echo "$scheme://$(hostname).local$suffix/"; fi
}

# The end of a run: what changed, where the dashboard is, the login (secret on fd 3 only).
print_summary() {
	local url
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
		while IFS= read -r url; do info "  $url"; done < <(dashboard_urls)
		systemctl is-active --quiet avahi-daemon 2>/dev/null ||
			info "  (no avahi-daemon: no $(hostname).local name; apt install avahi-daemon for one)"
	fi
	if [ "$TLS" != off ]; then tls_summary; fi
	if [ "$AUTH" = none ]; then
		info "  no password (--no-auth): anyone who can reach port $PORT can switch the LEDs"
	else
		if [ -n "$NEW_PASSWORD" ] && [ "$PASSWORD_GENERATED" = 0 ]; then
			info "  login $WEB_LOGIN: the new password you gave (stored only as a bcrypt hash: $HTPASSWD_FILE)"
		elif [ -n "$NEW_PASSWORD" ]; then
			# Made up by this run: shown once, to the terminal only, never into the log.
			printf '[deploy]   user: %s  password: %s   (shown once, not logged; stored only as a bcrypt hash)\n' \
				"$WEB_LOGIN" "$NEW_PASSWORD" >&3
			info "  login $WEB_LOGIN: new password shown on the terminal only (bcrypt hash: $HTPASSWD_FILE)"
		else
			info "  user: $WEB_LOGIN  password: unchanged (hash: $HTPASSWD_FILE; --set-password to change it)"
		fi
		if [ "$TLS" = off ]; then
			warn "Basic auth without TLS: the password crosses the network readable by anyone on it (--tls)"
		fi
	fi
	mqtt_summary
	info "command line: ledctl state   (for members of group $DAEMON_USER; log in again after being added)"
	info "uninstall: sudo $LEDD_HOME_DIR/deploy.sh --uninstall"
}
