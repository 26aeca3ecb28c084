/* siteprobe.h - the shared libraries' call site (see siteprobe.c) */
#ifndef SITEPROBE_H
#define SITEPROBE_H
#include <stddef.h>
long siteprobe_lib_read(int fd, char *buf, size_t n);
void *siteprobe_lib_dlopen(const char *name);
#endif
