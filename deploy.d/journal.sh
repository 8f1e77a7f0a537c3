# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/journal.sh -- the transaction: a lock, a journal of every change, rollback, commit.
#
# Sourced by deploy.sh. While a run is open ($TXN_OPEN=1), every change is
# appended to $RUN_JOURNAL as one tab-separated record *before or right after*
# it is made, whichever makes its undo safe:
#
#   file PATH BACKUP|-      written (BACKUP: a copy of the old one; -: it was new)
#   removed PATH BACKUP     deleted (BACKUP: a copy)
#   dir PATH                created
#   replaced DIR BACKUP     a directory rewritten in place (BACKUP: a copy of it)
#   attrs DIR MODE:UID:GID  an existing directory's mode and owner changed (these: the old ones)
#   user NAME / group NAME  created
#   userdel NAME ENTRY      user deleted (ENTRY: its passwd line, to create it again)
#   member USER GROUP       USER added to GROUP;   unmember USER GROUP: removed
#   enable UNIT / disable UNIT / start UNIT / stop UNIT / restart UNIT
#   package NAME            installed by this run (for --uninstall --purge)
#   packages-before FILE    every package's state before this run's first apt-get: the
#                           rollback undoes whatever apt did since (packages.sh)
#   debian-web STATE        Debian's lighttpd.service before we changed it
#   leftover PACKAGE PATH   PATH did not exist before this run's apt-get installed PACKAGE:
#                           it goes when PACKAGE does (rollback, --uninstall --purge)
#
# Rollback replays the records in reverse (restart/start: the old files are
# back by then, so the previous install runs again). Commit appends the
# records of things created to $INSTALL_JOURNAL, which --uninstall reads.

# Only one deploy.sh at a time (install, uninstall): fail at once if another holds the lock.
take_lock() {
	[ "$DRY_RUN" = 1 ] && return 0
	mkdir -p "$(dirname "$LOCK_FILE")"
	exec 9<>"$LOCK_FILE"
	if ! flock -n 9; then
		fatal "another deploy.sh is running (pid $(cat "$LOCK_FILE" 2>/dev/null || echo '?')); wait for it to finish"
	fi
	echo "$$" >"$LOCK_FILE"
}

# Open the transaction.
journal_begin() {
	[ "$DRY_RUN" = 1 ] && return 0
	RUN_JOURNAL=$TMP_DIR/run.journal
	BACKUP_DIR=$TMP_DIR/backup
	mkdir -p "$BACKUP_DIR"
	: >"$RUN_JOURNAL"
	TXN_OPEN=1
}

# journal TYPE ARGS...: record one change of this run.
journal() {
	[ "$TXN_OPEN" = 1 ] || return 0
	local IFS=$'\t'
	printf '%s\n' "$*" >>"$RUN_JOURNAL"
}

# Copy PATH aside (for an undo) and print the copy's name.
backup_of() {
	local copy
	copy=$BACKUP_DIR/$(wc -l <"$RUN_JOURNAL")-$(basename "$1")
	cp -a -- "$1" "$copy"
	echo "$copy"
}

# Undo every change of this run, last first, going on past an undo that fails: each
# failure is reported, and "rolled back" is said only when every undo succeeded (else
# it returns 1). Runs at most once, with the signals ignored (a second Ctrl-C must not
# cut it short; the commands it runs inherit that) and without the ERR trap.
rollback() {
	[ "$TXN_OPEN" = 1 ] || return 0
	TXN_OPEN=0
	trap '' INT TERM HUP PIPE
	trap - ERR
	set +e
	local type a b restart=() reload=0 unit failed=()
	warn "rolling back this run's changes"
	while IFS=$'\t' read -r type a b; do
		case $type in
		stop | restart) restart=("$a" "${restart[@]}") ;;
		package | packages-before | debian-web | leftover) ;; # rollback_packages; debian-web: --uninstall
		*)
			if undo "$type" "$a" "$b"; then
				info "  undone: $type $a${b:+ $b}"
			else
				warn "  could not undo: $type $a${b:+ $b}"
				failed+=("$type $a")
			fi
			;;
		esac
		case $type:$a in file:"$UNIT_DIR"/* | removed:"$UNIT_DIR"/*) reload=1 ;; esac
	done < <(tac "$RUN_JOURNAL")
	rollback_packages || failed+=("packages")
	remove_leftovers "$RUN_JOURNAL" || failed+=("leftovers of the packages")
	if [ "$reload" = 1 ] && ! systemctl daemon-reload; then failed+=("systemctl daemon-reload"); fi
	# The previous files are back: start again what ran before this run (a unit whose
	# package this rollback removed is not there to start).
	for unit in "${restart[@]}"; do
		if [ "$(systemctl show -p LoadState --value "$unit" 2>/dev/null)" = not-found ]; then
			info "  $unit: its package is gone again, nothing to restart"
		elif ! systemctl restart "$unit"; then
			warn "  could not undo: $unit did not start again"
			failed+=("restart $unit")
		fi
	done
	if [ ${#failed[@]} -gt 0 ]; then
		warn "rollback incomplete: ${#failed[@]} change(s) could not be undone (${failed[*]}); see above and $LOG_FILE"
		return 1
	fi
	warn "rolled back: the system is as it was before this run (log: $LOG_FILE)"
}

# undo TYPE A B: undo one journal record; non-zero when that failed.
undo() {
	local type=$1 a=$2 b=$3
	case $type in
	file) if [ "$b" = - ]; then rm -f -- "$a"; else rm -f -- "$a" && cp -a -- "$b" "$a"; fi ;;
	# (rm first: a half-removed directory must not receive the copy inside it)
	removed | replaced) rm -rf -- "$a" && cp -a -- "$b" "$a" ;;
	attrs) chown "${b#*:}" "$a" && chmod "${b%%:*}" "$a" ;;
	dir) rm -rf -- "$a" ;;
	user) ! getent passwd "$a" >/dev/null || userdel "$a" ;;
	userdel) getent passwd "$a" >/dev/null || restore_user "$b" ;;
	group)
		# (userdel may have taken the user's own group already)
		if getent group "$a" >/dev/null; then groupdel "$a" || return 1; fi
		if [ "$a" = "$GPIO_GROUP" ]; then rm -f "$GPIO_GROUP_MARKER"; fi
		;;
	member) gpasswd -d "$a" "$b" >/dev/null ;;
	unmember) usermod -aG "$b" "$a" ;;
	enable) systemctl disable --quiet "$a" ;;
	disable) systemctl enable --quiet "$a" ;;
	start) systemctl stop "$a" ;;
	*) return 1 ;;
	esac
}

# Create a deleted user again from its passwd line (same uid, group, home and shell).
restore_user() {
	local name uid gid gecos home shell
	IFS=: read -r name _ uid gid gecos home shell <<<"$1"
	useradd --system --uid "$uid" --gid "$gid" --comment "$gecos" --home-dir "$home" --no-create-home \
		--shell "$shell" "$name"
}

# Drop one record from the install journal (what it names is gone).
journal_forget() {
	local kept
	kept=$(grep -vxF -- "$1" "$INSTALL_JOURNAL" || true)
	if [ -n "$kept" ]; then printf '%s\n' "$kept" >"$INSTALL_JOURNAL"; else : >"$INSTALL_JOURNAL"; fi
}

# Close the transaction: merge what was created into the install journal, and drop from it
# what this run deleted (--no-mqtt), so that --uninstall does not look for it.
journal_commit() {
	[ "$TXN_OPEN" = 1 ] || return 0
	local line type name
	install -d -m 0755 "$DEPLOY_STATE_DIR"
	touch "$INSTALL_JOURNAL"
	while IFS= read -r line; do
		IFS=$'\t' read -r type name _ <<<"$line"
		case $type in
		removed) journal_forget "file"$'\t'"$name" ;;
		userdel) journal_forget "user"$'\t'"$name" ;;
		esac
		case $line in
		file$'\t'*$'\t'-) line=${line%$'\t'-} ;;
		dir$'\t'* | user$'\t'* | group$'\t'* | member$'\t'* | enable$'\t'* | package$'\t'* | debian-web$'\t'* | leftover$'\t'*) ;;
		*) continue ;;
		esac
		grep -qxF -- "$line" "$INSTALL_JOURNAL" || printf '%s\n' "$line" >>"$INSTALL_JOURNAL"
	done <"$RUN_JOURNAL"
	TXN_OPEN=0
}
