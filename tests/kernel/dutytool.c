/* dutytool.c -- measure a PWM'd gpio-sim line's duty cycle from the kernel's side (in the VM).
 *
 *   dutytool FILE MS     read FILE (a gpio-sim sim_gpioN/value attribute) for MS ms at random
 *                        instants; print "duty <percent> samples <n>"
 *
 * The value attribute is what the kernel holds for the line, whatever ledd believes it
 * wrote. Reads come after a random pause of 20-220 us, so they land at random phases of the
 * PWM period, and the duty is the share of the time the line read 1: each read stands for the
 * time since the previous one. Time, not a count of reads: the VM has one emulated CPU, and
 * while ledd switches the line (a wake-up, an ioctl: about 0.2 ms under TCG) this tool cannot
 * read it. Counting reads would leave out the first 0.2 ms after every edge, which shortens
 * the short phase (10 % read as 6 %, 90 % as 95 %); weighting each read by the time since the
 * previous one gives that gap to the value after the edge, which is right after a rise and
 * after a fall alike. Used by tests/kernel/vm_script.py; static, no dependencies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 0 or 1, or -1 with errno. Opened each time: sysfs hands the current value to a fresh read. */
static int read_value(const char *path)
{
	char buf[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	return buf[0] == '1';
}

int main(int argc, char **argv)
{
	unsigned long samples = 0;
	uint64_t start, last, end, high_ns = 0;
	unsigned int seed = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: dutytool FILE MS\n");
		return 2;
	}
	start = last = now_ns();
	end = start + strtoull(argv[2], NULL, 10) * 1000000u;
	while (last < end) {
		struct timespec pause = { 0, 20000 + (long)(rand_r(&seed) % 200000) };
		uint64_t t;
		int v;

		nanosleep(&pause, NULL);
		v = read_value(argv[1]);
		if (v < 0) {
			fprintf(stderr, "dutytool: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		t = now_ns();
		if (v)
			high_ns += t - last;    /* the time since the last read: at this value */
		last = t;
		samples++;
	}
	printf("duty %.2f samples %lu\n", 100.0 * (double)high_ns / (double)(last - start), samples);
	return 0;
}
