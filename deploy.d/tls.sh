# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/tls.sh -- HTTPS for ledd-web: a self-signed certificate, or the owner's own.
#
# Sourced by deploy.sh. The self-signed certificate names the host name,
# hostname.local, the loopback addresses and every address of the Pi; the list
# is kept next to it ($TLS_DIR/names). A name or address it does not carry yet (a
# new DHCP lease, a renamed Pi) makes a new certificate carrying the old names and
# the new ones, so a Pi moving between known addresses keeps its certificate; the
# key is made once and kept, so the public key an owner may have pinned stays.
# lighttpd's mod_openssl (package lighttpd-mod-openssl) serves it (render_site in
# web.sh). lighttpd runs as ledd-web from the start (User= in ledd-web.service,
# never as root), so the key must be readable by that user: 0640 root:ledd-web.

# The subjectAltName list the self-signed certificate must carry.
tls_names() {
	local host addr names
	host=$(hostname)
	names="DNS:$host,DNS:$host.local,IP:127.0.0.1,IP:::1"
	for addr in $(hostname -I 2>/dev/null); do
		case $addr in fe80:*) continue ;; esac
		names="$names,IP:$addr"
	done
	echo "$names"
}

# Step: the certificate and key in $TLS_DIR (or their removal after --no-tls).
step_tls() {
	local web_group
	web_group=$(group_or_root "$WEB_USER")
	if [ "$TLS" = off ]; then
		remove_path "$TLS_DIR"
		return 0
	fi
	put_dir "$TLS_DIR" 0750 root "$web_group"
	if [ "$TLS" = own ]; then
		put_file "$TLS_CERT_SRC" "$TLS_CERT" 0644 root root RESTART_WEB
		put_file "$TLS_KEY_SRC" "$TLS_KEY" 0640 root "$web_group" RESTART_WEB
		remove_path "$TLS_DIR/names"
		return 0
	fi
	local names dir cert key list
	names=$(tls_names)
	if [ -f "$DESTDIR$TLS_CERT" ] && [ -f "$DESTDIR$TLS_KEY" ] && [ -f "$DESTDIR$TLS_DIR/names" ]; then
		# The names of the current certificate first, then any new one.
		names=$(printf '%s,%s' "$(cat "$DESTDIR$TLS_DIR/names")" "$names" | tr ',' '\n' | awk 'NF && !seen[$0]++' | paste -sd,)
		if [ "$(cat "$DESTDIR$TLS_DIR/names")" = "$names" ]; then return 0; fi
	fi
	if [ "$DRY_RUN" = 1 ] && ! command -v openssl >/dev/null; then
		note_change "generate a self-signed certificate for $names"
		return 0
	fi
	dir=$TMP_DIR/tls
	mkdir -p "$dir"
	cert=$dir/cert.pem key=$dir/key.pem list=$dir/names
	echo "$names" >"$list"
	info "TLS: a self-signed certificate for $names"
	if ! tls_self_signed_key "$key" >"$dir/openssl.log" 2>&1 ||
		! openssl req -x509 -new -key "$key" -days 3650 -subj "/CN=$(hostname)" \
			-addext "subjectAltName=$names" -out "$cert" >>"$dir/openssl.log" 2>&1; then
		cat "$dir/openssl.log" >&2
		fatal "openssl could not make the certificate"
	fi
	put_file "$cert" "$TLS_CERT" 0644 root root RESTART_WEB
	put_file "$key" "$TLS_KEY" 0640 root "$web_group" RESTART_WEB
	put_file "$list" "$TLS_DIR/names" 0644 root root
}

# The self-signed certificate's key into file $1: the one in use (our own: the names file says
# so, not an owner's --tls-key), else a new EC P-256 key.
tls_self_signed_key() {
	if [ -f "$DESTDIR$TLS_DIR/names" ] && openssl pkey -in "$DESTDIR$TLS_KEY" -noout 2>/dev/null; then
		(umask 077 && cp "$DESTDIR$TLS_KEY" "$1")
	else
		(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1")
	fi
}

# Summary lines: the certificate's SHA-256 fingerprint, to compare with the browser's.
tls_summary() {
	local fp
	fp=$(openssl x509 -noout -fingerprint -sha256 -in "$DESTDIR$TLS_CERT" 2>/dev/null | sed 's/.*=//') || true
	info "  HTTPS certificate ($TLS): $TLS_CERT"
	info "  SHA-256 fingerprint: ${fp:-unknown}  (the browser shows it when it warns about the certificate)"
	if [ "$OPT_REDIRECT_PORT" != off ]; then info "  http://...:$OPT_REDIRECT_PORT/ redirects to HTTPS"; fi
}
