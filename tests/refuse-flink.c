/* SPDX-License-Identifier: MIT */
/* refuse-flink: runs a program as Linux before 6.10 treats a process without CAP_DAC_READ_SEARCH
 * (Debian 12's kernel and asyncd.service, which has no capabilities): linkat() with AT_EMPTY_PATH
 * fails with ENOENT. A seccomp filter gives that answer at the kernel boundary, so the tests reach
 * the file writer's other way of naming an unnamed file, which this newer kernel never asks for.
 *
 * Usage: refuse-flink PROGRAM [ARGUMENT...]. Exits 77 (a skipped test) where it has no filter. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#  define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#  define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#if __BYTE_ORDER == __LITTLE_ENDIAN
#  define LOW_WORD 0
#else
#  define LOW_WORD 4
#endif
#define FLAGS_LOW (offsetof(struct seccomp_data, args) + 4 * sizeof(__u64) + LOW_WORD)

int main(int argc, char *argv[]) {
        if (argc < 2) {
                fprintf(stderr, "usage: refuse-flink PROGRAM [ARGUMENT...]\n");
                return 2;
        }
#ifdef NATIVE_AUDIT_ARCH
        struct sock_filter code[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_AUDIT_ARCH, 0, 4),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_linkat, 0, 2),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, FLAGS_LOW),
                BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOENT),
        };
        struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

        /* prctl, not seccomp(2): asyncd.service's SystemCallFilter=@system-service allows only it. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
                fprintf(stderr, "refuse-flink: cannot install the filter: %s\n", strerror(errno));
                return 1;
        }
        execvp(argv[1], argv + 1);
        fprintf(stderr, "refuse-flink: cannot run %s: %s\n", argv[1], strerror(errno));
        return 127;
#else
        fprintf(stderr, "refuse-flink: no filter for this architecture\n");
        return 77;
#endif
}
