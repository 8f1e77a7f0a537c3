#!/bin/bash
# guest-agent.sh -- the virtual Pi's end of the test's command channel.
#
# Baked into the VM base image (tests/deploy/vmimage.sh) and started by
# ledd-test-agent.service. It reads requests from the second serial port
# (/dev/ttyS1, a unix socket on the host), one per line:
#     RUN <id> <timeout_s> <base64 of a bash script>
# runs each with bash as root and answers with one line:
#     DONE <id> <exit status> <base64 of stdout+stderr>
# Base64 keeps the channel line-based whatever the commands print. The host
# side is tests/deploy/vm.py. Nothing here is security-relevant: the port
# exists only inside a throwaway test VM.
set -u
PORT=/dev/ttyS1

stty -F "$PORT" raw -echo -ixon -ixoff 115200 || exit 1
exec 3<>"$PORT"
printf 'AGENT READY\n' >&3
while IFS= read -r line <&3; do
	read -r verb id limit payload extra <<<"$line"
	if [ "$verb" != RUN ] || [ -z "$payload" ] || [ -n "$extra" ]; then
		printf 'BAD %s\n' "${line:0:40}" >&3
		continue
	fi
	script=$(printf '%s' "$payload" | base64 -d)
	out=$(timeout --kill-after=5 "$limit" bash -c "$script" 2>&1 </dev/null)
	rc=$?
	printf 'DONE %s %d %s\n' "$id" "$rc" "$(printf '%s' "$out" | base64 -w0)" >&3
done
