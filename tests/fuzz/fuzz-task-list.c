/* SPDX-License-Identifier: MIT */
/* fuzz-task-list: asyncctl's reading of a URL list file (task_list_read over fmemopen) and its
 * rewriting of the daemon's error messages (task_list_map_message).
 *
 * Input: the bytes of a list file; if it contains "\n\x01MSG\x01", the rest is used as a daemon
 * message for task_list_map_message() against the tasks read from the part before.
 *
 * Invariants:
 *   L1  a NUL byte => -EBADMSG at the line of the first NUL; else 0
 *   L2  one task per line that is neither blank nor starts ('#' after leading space); l->lines
 *       names that line; the URL is the line's first word (no white space, not empty), the
 *       file name the rest without surrounding white space, NULL when there is none
 *   L3  writing the tasks back as "URL NAME\n" and reading them again gives the same tasks
 *   L4  task_display_name() never returns NULL; task_invalid_reason() does not crash and
 *       accepts every task whose URL is valid UTF-8 and whose name passes filename_is_valid()
 *   L5  task_list_map_message() returns a string; without "task " in the message it is unchanged */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fname-util.h"
#include "task-list.h"
#include "utf8-util.h"

static int read_list(const char *buf, size_t size, TaskList *l, unsigned *ret_line) {
        FILE *f;
        int r;

        f = size > 0 ? fmemopen((void *) buf, size, "r") : fopen("/dev/null", "r");
        if (!f)
                abort();
        r = task_list_read(l, f, ret_line);
        fclose(f);
        return r;
}

static bool ref_isspace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data, *msg = NULL, *sep;
        TaskList l = { .input_name = "list.txt" }, l2 = {};
        size_t list_size = size, expected = 0;
        unsigned line = 0, nul_line = 0, lineno = 0;
        int r;

        sep = memmem(buf, size, "\n\x01MSG\x01", 6);
        if (sep) {
                list_size = (size_t) (sep - buf) + 1;
                msg = sep + 6;
        }

        /* Reference: split into lines and predict. */
        for (size_t at = 0; at < list_size;) {
                const char *nl = memchr(buf + at, '\n', list_size - at);
                size_t len = nl ? (size_t) (nl - (buf + at)) + 1 : list_size - at, i = 0;

                lineno++;
                if (memchr(buf + at, 0, len)) {
                        nul_line = lineno;
                        break;
                }
                while (i < len && ref_isspace(buf[at + i]))
                        i++;
                if (i < len && buf[at + i] != '#')
                        expected++;
                at += len;
        }

        r = read_list(buf, list_size, &l, &line);
        if (nul_line) {
                CHECK(r == -EBADMSG && line == nul_line, "L1 NUL on line %u: r=%d line=%u", nul_line, r, line);
                goto finish;
        }
        CHECK(r == 0, "L1 task_list_read = %d", r);
        CHECK(l.n == expected, "L2 %zu tasks, expected %zu", l.n, expected);

        for (size_t i = 0; i < l.n; i++) {
                const Task *t = l.tasks + i;
                char *d;

                CHECK(t->url && *t->url, "L2 empty URL");
                CHECK(t->url[0] != '#', "L2 comment read as a task");
                for (const char *p = t->url; *p; p++)
                        CHECK(!ref_isspace(*p), "L2 space in URL \"%s\"", t->url);
                if (t->filename) {
                        size_t n = strlen(t->filename);
                        CHECK(n > 0 && !ref_isspace(t->filename[0]) && !ref_isspace(t->filename[n - 1]),
                              "L2 file name \"%s\" has surrounding space", t->filename);
                        CHECK(!strchr(t->filename, '\n'), "L2 newline in a name");
                }
                CHECK(l.lines[i] >= 1 && (i == 0 || l.lines[i] > l.lines[i - 1]), "L2 line numbers");

                d = task_display_name(t);
                CHECK(d, "L4 display name NULL");
                free(d);
                if (utf8_is_valid(t->url) && (!t->filename || filename_is_valid(t->filename)))
                        CHECK(!task_invalid_reason(t), "L4 valid task refused");
                else
                        CHECK(task_invalid_reason(t), "L4 invalid task accepted");
        }

        /* L3: round trip */
        {
                char *out = NULL;
                size_t out_size = 0;
                FILE *f = open_memstream(&out, &out_size);

                for (size_t i = 0; i < l.n; i++)
                        fprintf(f, "%s%s%s\n", l.tasks[i].url, l.tasks[i].filename ? " " : "",
                                l.tasks[i].filename ?: "");
                fclose(f);
                r = read_list(out, out_size, &l2, NULL);
                CHECK(r == 0 && l2.n == l.n, "L3 round trip: %d, %zu tasks instead of %zu", r, l2.n, l.n);
                for (size_t i = 0; i < l.n; i++) {
                        CHECK(strcmp(l.tasks[i].url, l2.tasks[i].url) == 0, "L3 URL changed");
                        CHECK(!l.tasks[i].filename == !l2.tasks[i].filename &&
                              (!l.tasks[i].filename || strcmp(l.tasks[i].filename, l2.tasks[i].filename) == 0),
                              "L3 name changed");
                }
                free(out);
        }

        /* L5 */
        if (msg) {
                size_t msg_size = size - (size_t) (msg - buf);
                char *m, *mapped;

                if (!memchr(msg, 0, msg_size)) {
                        m = strndup(msg, msg_size);
                        mapped = task_list_map_message(&l, m);
                        CHECK(mapped, "L5 NULL");
                        if (!strstr(m, "task "))
                                CHECK(strcmp(mapped, m) == 0, "L5 message changed");
                        free(mapped);
                        free(m);
                }
        }

finish:
        task_list_done(&l);
        task_list_done(&l2);
        return 0;
}
