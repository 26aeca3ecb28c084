/* boot.h - where the small variables that start-up writes are kept.
 *
 * Each page of memory a process writes costs a page fault, and freeing it
 * again at exit; in a virtual machine both are expensive (about 11 us per
 * fault where the benchmark runs). The library's .bss holds megabytes of
 * per-fd tables, and a small variable between two of them sits on a page of
 * its own: the constructor used to touch a dozen such pages. WB_BOOT puts
 * a variable in .data instead, beside the pointers the dynamic loader
 * relocates (and so writes) anyway: all of them share that page.
 *
 * For small variables written at start-up or on every process's first
 * calls only; zero-initialized like .bss (they take their size in the file).
 */
#ifndef WB_BOOT_H
#define WB_BOOT_H

#define WB_BOOT __attribute__((section(".data.wb_boot")))

#endif
