# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/uninstall.sh -- `deploy.sh --uninstall [--purge]`, driven by the install journal.
#
# Sourced by deploy.sh. The install journal ($INSTALL_JOURNAL, journal.sh)
# lists what the installs created: files and directories, users and groups,
# group memberships, units enabled, packages installed and the state Debian's
# lighttpd.service had before deploy.sh changed it. Uninstall removes them in
# reverse, restores that lighttpd state, and keeps the config, the LED state
# and the packages; --purge removes those too (after asking, unless --yes).
# An install from before the journal existed is handled by LEGACY_PATHS.

# What deploy.sh installed before the install journal existed.
legacy_paths() {
	printf '%s\n' "$LEDCTL_LINK" "$LEDD_SBIN" "$UNIT_FILE" "$WEB_UNIT_FILE" "$LEGACY_DROPIN" \
		"$LEDD_HOME_DIR" "$WEB_CONF_DIR" "$WEB_STATE_DIR" "$(dirname "$BUILD_DIR")" "$UDEV_RULE"
}

# Ask before --purge (stdin or the terminal); --yes answers for the owner.
confirm_purge() {
	local answer=
	[ "$ASSUME_YES" = 1 ] || [ "$DRY_RUN" = 1 ] && return 0
	[ -r /dev/tty ] || fatal "--purge removes $CONF_DIR, $STATE_DIR, the log and packages: add --yes to confirm"
	read -r -p "--purge removes $CONF_DIR (config, password hash), $STATE_DIR (LED state), $LOG_FILE and the packages deploy.sh installed. Continue? [y/N] " answer </dev/tty
	[[ $answer =~ ^[Yy] ]] || fatal "nothing removed"
}

# remove_created PATH: remove a path the journal lists, unless it is kept (config, state).
remove_created() {
	local path=$1
	if [ "$PURGE" = 0 ]; then
		case $path in "$CONF_DIR" | "$CONF_FILE" | "$DEPLOY_CONF" | "$STATE_DIR"* | "$DEPLOY_STATE_DIR"*) return 0 ;; esac
	fi
	remove_path "$path"
}

# Put Debian's lighttpd.service back as it was before deploy.sh ("enabled active" ...).
restore_debian_web() {
	local state=$1
	systemctl list-unit-files "$DEBIAN_WEB_UNIT" >/dev/null 2>&1 || return 0
	if [[ $state == "enabled "* ]] && ! systemctl is-enabled --quiet "$DEBIAN_WEB_UNIT"; then
		note_change "enable $DEBIAN_WEB_UNIT again (as before deploy.sh)"
		run systemctl enable --quiet "$DEBIAN_WEB_UNIT"
	fi
	if [[ $state == *" active" ]] && ! systemctl is-active --quiet "$DEBIAN_WEB_UNIT"; then
		note_change "start $DEBIAN_WEB_UNIT again (as before deploy.sh)"
		run systemctl start "$DEBIAN_WEB_UNIT"
	fi
}

# Stop and disable our units: those the install journal says deploy.sh enabled (last first: the
# MQTT bridge before ledd), then ledd-web and ledd. (Removing a unit file leaves its
# .wants/ link behind, dangling, unless the unit is disabled first.)
stop_our_units() {
	local type unit units=()
	while IFS=$'\t' read -r type unit _; do
		if [ "$type" = enable ]; then units+=("$unit"); fi
	done < <(tac "$JOURNAL_COPY")
	for unit in $(printf '%s\n' "${units[@]}" "$WEB_UNIT" "$LEDD_UNIT" | awk '!seen[$0]++'); do
		[ -f "$UNIT_DIR/$unit" ] || continue
		if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit"; then
			note_change "stop and disable $unit"
			run systemctl disable --now --quiet "$unit"
		fi
	done
}

# sudo ./deploy.sh --uninstall [--purge]
do_uninstall() {
	local type a b debian_state='' packages=() path web_was_legacy=0 hook
	check_root
	[ "$PURGE" = 0 ] || confirm_purge
	take_lock
	open_log
	# A copy: the journal's own directory may go (--purge) while it is read.
	JOURNAL_COPY=$TMP_DIR/installed.journal
	if [ -f "$INSTALL_JOURNAL" ]; then cp "$INSTALL_JOURNAL" "$JOURNAL_COPY"; else : >"$JOURNAL_COPY"; fi
	# Before /opt/ledd goes: an install from before the journal kept its gpio marker there.
	if [ -f "$LEGACY_GPIO_MARKER" ]; then GPIO_WAS_OURS=1; fi
	stop_our_units
	for hook in "${UNINSTALL_HOOKS[@]}"; do "$hook"; done
	if [ -f "$LEGACY_DROPIN" ]; then web_was_legacy=1; fi
	# Files and directories first (journal order reversed), then users and groups.
	if [ -s "$JOURNAL_COPY" ]; then
		while IFS=$'\t' read -r type a b; do
			case $type in
			file | dir) remove_created "$a" ;;
			debian-web) debian_state=$a ;;
			package) packages+=("$a") ;;
			esac
		done < <(tac "$JOURNAL_COPY")
	fi
	while IFS= read -r path; do remove_path "$path"; done < <(legacy_paths)
	rmdir "$(dirname "$LEGACY_DROPIN")" 2>/dev/null || true
	remove_path "$RUNTIME_DIR"
	if [ "$CHANGES" -gt 0 ]; then
		run systemctl daemon-reload
		run udevadm control --reload 2>/dev/null || true
	fi
	remove_accounts
	if [ -n "$debian_state" ]; then
		restore_debian_web "$debian_state"
	elif [ "$web_was_legacy" = 1 ] && systemctl is-active --quiet "$DEBIAN_WEB_UNIT"; then
		note_change "restart $DEBIAN_WEB_UNIT with Debian's own configuration"
		run systemctl restart "$DEBIAN_WEB_UNIT"
	fi
	if [ "$PURGE" = 1 ]; then
		purge_rest "${packages[@]}"
	elif [ -d "$CONF_DIR" ] || [ -d "$STATE_DIR" ]; then
		info "kept $CONF_DIR and $STATE_DIR, and the packages (--purge removes them)"
	fi
	if [ "$DRY_RUN" = 1 ]; then
		info "dry run: $CHANGES change(s) would be made"
	else
		info "uninstalled ($CHANGES change(s))"
	fi
}

# Users and groups deploy.sh created (the journal's, else the legacy ones), and memberships it added.
remove_accounts() {
	local type a b
	if [ -s "$JOURNAL_COPY" ]; then
		while IFS=$'\t' read -r type a b; do
			case $type in
			member) if getent group "$b" | grep -qw "$a"; then
				note_change "remove $a from group $b"
				run gpasswd -d "$a" "$b" >/dev/null
			fi ;;
			user) if getent passwd "$a" >/dev/null; then
				note_change "delete user $a"
				run userdel "$a"
			fi ;;
			group) if getent group "$a" >/dev/null; then
				note_change "delete group $a"
				run groupdel "$a"
			fi ;;
			esac
		done < <(tac "$JOURNAL_COPY")
	fi
	# An install from before the journal: user and group ledd, gpio when the marker says so.
	for a in "$WEB_USER" "$DAEMON_USER"; do
		if getent passwd "$a" >/dev/null; then
			note_change "delete user $a"
			run userdel "$a"
		fi
		if getent group "$a" >/dev/null; then
			note_change "delete group $a"
			run groupdel "$a"
		fi
	done
	if [ "$GPIO_WAS_OURS" = 1 ] || [ -f "$GPIO_GROUP_MARKER" ]; then
		if getent group "$GPIO_GROUP" >/dev/null; then
			note_change "delete group $GPIO_GROUP (deploy.sh created it)"
			run groupdel "$GPIO_GROUP"
		fi
	fi
}

# --purge: the packages deploy.sh installed, config, state, log and the journal itself.
purge_rest() {
	if [ $# -gt 0 ]; then
		note_change "apt-get purge $* (installed by deploy.sh)"
		if [ "$DRY_RUN" = 0 ]; then apt_get purge -y "$@" || warn "apt-get purge failed (above)"; fi
	fi
	remove_leftovers "$JOURNAL_COPY" || warn "could not remove what the purged packages left (above)"
	remove_path "$CONF_DIR"
	remove_path "$STATE_DIR"
	remove_path "$DEPLOY_STATE_DIR"
	remove_path "$LOG_FILE"
}
