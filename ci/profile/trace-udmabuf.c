// SPDX-License-Identifier: GPL-2.0
/*
 * trace-udmabuf DEPTH FUNC...: creates and closes 300 one-page udmabufs,
 * then 5 more with the function_graph tracer on, and prints the trace.
 * A FUNC is a function to graph (set_graph_function), or with "f:" before
 * it one to trace at all (set_ftrace_filter). Run by ci/profile/run.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/udmabuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define T "/sys/kernel/debug/tracing/"

/* Writes v to the tracefs file f, opened with O_TRUNC or O_APPEND. */
static void w(const char *f, const char *v, int how)
{
	int fd = open(f, O_WRONLY | how);

	if (fd < 0 || write(fd, v, strlen(v)) < 0) {
		perror(f);
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct udmabuf_create c = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = 4096 };
	char buf[65536];
	int dev, mfd, i, fd, n;

	if (argc < 3) {
		fprintf(stderr, "usage: trace-udmabuf DEPTH FUNC...\n");
		return 2;
	}
	w(T "tracing_on", "0", O_TRUNC);
	w(T "max_graph_depth", argv[1], O_TRUNC);
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *file = T "set_graph_function";

		if (!strncmp(a, "f:", 2)) {
			file = T "set_ftrace_filter";
			a += 2;
		}
		w(file, a, O_APPEND);
	}
	w(T "current_tracer", "function_graph", O_TRUNC);
	w(T "trace_options", "funcgraph-proc", O_TRUNC);
	dev = open("/dev/udmabuf", O_RDWR);
	mfd = memfd_create("t", MFD_ALLOW_SEALING);
	if (dev < 0 || mfd < 0 || ftruncate(mfd, 4096) || fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		perror("setup");
		return 1;
	}
	if (pwrite(mfd, "x", 1, 0) != 1) {
		perror("pwrite");
		return 1;
	}
	c.memfd = mfd;
	for (i = 0; i < 300; i++) {
		fd = ioctl(dev, UDMABUF_CREATE, &c);
		if (fd < 0) {
			perror("UDMABUF_CREATE");
			return 1;
		}
		close(fd);
	}
	w(T "tracing_on", "1", O_TRUNC);
	for (i = 0; i < 5; i++)
		close(ioctl(dev, UDMABUF_CREATE, &c));
	w(T "tracing_on", "0", O_TRUNC);
	fd = open(T "trace", O_RDONLY);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	return 0;
}
