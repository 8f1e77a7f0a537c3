# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/rpi.sh -- what Raspberry Pi OS brings that deploy.sh must respect.
#
# Sourced by deploy.sh. Raspberry Pi OS differs from plain Debian in three ways
# that matter here, and each is handled where it matters:
#   - group gpio exists, with its udev rule (99-com.rules: SUBSYSTEM=="gpio",
#     GROUP="gpio", MODE="0660"): deploy.sh uses both, records neither as its own,
#     and --uninstall leaves them (step_users, install_udev_rule);
#   - no user pi (since 2022 the first user is named at first boot): nothing
#     assumes one; the user who ran sudo joins group ledd (for ledctl);
#   - /boot/firmware/config.txt (/boot/config.txt before bookworm) may hand pins
#     to the kernel (I2C, SPI, UART, 1-Wire, a fan, a shutdown button, audio):
#     ledd could not then claim them ("line busy"). deploy.sh reads it, never
#     edits it, and warns before anything changes about each pin of ledd.conf
#     that it gives away (check_boot_config, from preflight).

# The BCM pins each config.txt line hands to the kernel: "PINS" for LINE (its default pins,
# or the pin its gpiopin=/gpio_pin=/pin= parameter names).
boot_config_pins() {
	local line=$1 param
	param=$(sed -n 's/.*[,:]\(gpiopin\|gpio_pin\|pin\)=\([0-9]\{1,2\}\).*/\2/p' <<<"$line")
	case $line in
	dtparam=i2c_arm=on | dtparam=i2c=on) echo "2 3" ;;
	dtparam=spi=on) echo "7 8 9 10 11" ;;
	enable_uart=1) echo "14 15" ;;
	dtparam=i2s=on | dtoverlay=hifiberry* | dtoverlay=iqaudio* | dtoverlay=i2s-*) echo "18 19 20 21" ;;
	dtoverlay=w1-gpio*) echo "${param:-4}" ;;
	dtoverlay=gpio-shutdown*) echo "${param:-3}" ;;
	dtoverlay=gpio-fan*) echo "${param:-12}" ;;
	dtoverlay=gpio-ir*) echo "${param:-18}" ;;
	dtoverlay=pwm-2chan*) echo "18 19" ;;
	dtoverlay=pwm*) echo "${param:-18}" ;;
	esac
}

# "GPIO NAME" for each pin of ledd's configuration (the existing one, else the one this run writes).
config_pins() {
	local conf=$DESTDIR$CONF_FILE
	if [ ! -f "$conf" ]; then
		conf=$(tmp_file)
		render_config >"$conf"
	fi
	awk '/^\[(led|button)[ \t]/ { name = $0; gsub(/[][]/, "", name) }
		name != "" && /^[ \t]*gpio[ \t]*=/ { sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t#;].*/, ""); print $0, name }' "$conf"
}

# Warn about each pin ledd.conf uses that the Pi's config.txt gives to the kernel.
check_boot_config() {
	local file line pins gpio name
	for file in "${BOOT_CONFIGS[@]}"; do
		[ -f "$file" ] || continue
		while IFS= read -r line; do
			line=${line%%#*}
			line=${line//[[:space:]]/}
			pins=$(boot_config_pins "$line")
			[ -n "$pins" ] || continue
			while read -r gpio name; do
				if [[ " $pins " == *" $gpio "* ]]; then
					warn "GPIO $gpio ($name in $CONF_FILE) is taken by '$line' in $file: ledd cannot use it (line busy). Choose another pin, or remove that line and reboot"
				fi
			done < <(config_pins)
		done <"$file"
		return 0 # the first one found is the one the firmware reads
	done
}
