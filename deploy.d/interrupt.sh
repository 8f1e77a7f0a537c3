# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/interrupt.sh -- the traps, and the log that outlives an interruption.
#
# Sourced by deploy.sh. Whatever ends a run early ends it through the EXIT trap,
# which rolls back an open transaction (journal.sh): fatal, an unexpected error
# (the ERR trap names the file and line), and the signals an owner sends, on
# purpose or not: Ctrl-C (SIGINT to the whole process group), SIGTERM (to bash or
# to its group), SIGHUP (the terminal or ssh session closed) and SIGPIPE.
#
# A terminal's Ctrl-C reaches every process of the foreground group, and the
# log's tee is one of them: had it died, bash's next message would have killed
# bash with SIGPIPE before any undo. So tee ignores those signals, and keeps
# writing the log when the terminal is gone (tee -p: a failed write to stdout is
# not fatal), until bash, the last writer, exits.

# install_traps: what main sets before anything can change.
install_traps() {
	trap on_exit EXIT
	trap 'on_error $LINENO "${BASH_SOURCE[0]:-}"' ERR
	trap 'on_signal INT 130' INT
	trap 'on_signal TERM 143' TERM
	trap 'on_signal HUP 129' HUP
	trap 'on_signal PIPE 141' PIPE
}

# Append this run's output to the log (and still show it). Secrets never go
# through here: they are written to fd 3, the terminal (or whatever ran us) only.
open_log() {
	[ "$DRY_RUN" = 1 ] && return 0
	touch "$LOG_FILE" && chmod 0640 "$LOG_FILE"
	# The signals are ignored before tee starts (a disposition exec keeps): bash reports
	# and rolls back, tee records it.
	exec > >(
		trap '' INT TERM HUP PIPE
		exec tee -p -a "$LOG_FILE"
	) 2>&1
	info "--- deploy.sh $MODE started $(date -u '+%F %T UTC'), log: $LOG_FILE"
}

# Remove this run's temporary files.
cleanup() {
	if [ -n "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
}

# EXIT trap: an open transaction at exit means failure: roll it back.
on_exit() {
	local status=$?
	[ "$BASHPID" = "$$" ] || return "$status"
	trap - ERR
	set +e
	if [ "$TXN_OPEN" = 1 ]; then rollback; fi
	cleanup
	exit "$status"
}

# ERR trap: an unexpected failure; name the file and line, then exit (on_exit rolls back).
on_error() {
	local status=$? line=$1 file=${2:-deploy.sh}
	trap - ERR
	# In a subshell ($(...) inherits the trap with set -E) let the caller report.
	if [ "$BASHPID" != "$$" ]; then exit "$status"; fi
	file=${file#"$ROOT"/}
	printf '[deploy] error: failed at %s line %s (exit %s)\n' "${file:-deploy.sh}" "$line" "$status" >&2 || true
	exit "$status"
}

# Signal trap: stop here (on_exit rolls back); a second signal is ignored from now on.
on_signal() {
	trap '' INT TERM HUP PIPE
	if [ -n "$PAUSE_PID" ]; then kill "$PAUSE_PID" 2>/dev/null || true; fi
	printf '[deploy] error: interrupted by SIG%s\n' "$1" >&2 || true
	exit "$2"
}
