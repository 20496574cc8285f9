/* SPDX-License-Identifier: MIT */
/* progress: the tqdm-like progress bar and the spinner, rendered to strings (no I/O here). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "output.h"
#include "progress.h"

void progress_format_interval(uint64_t usec, char *buf, size_t size) {
        uint64_t s = usec / USEC_PER_SEC, m = s / 60, h = m / 60;

        if (h > 0)
                (void) snprintf(buf, size, "%" PRIu64 ":%02u:%02u", h, (unsigned) (m % 60), (unsigned) (s % 60));
        else
                (void) snprintf(buf, size, "%02u:%02u", (unsigned) m, (unsigned) (s % 60));
}

void progress_format_rate(double per_sec, char *buf, size_t size) {
        if (!(per_sec > 0))
                (void) snprintf(buf, size, "?it/s");
        else if (per_sec < 1)
                (void) snprintf(buf, size, "%5.2fs/it", 1 / per_sec);
        else
                (void) snprintf(buf, size, "%5.2fit/s", per_sec);
}

const char *progress_spinner(unsigned frame, bool unicode) {
        static const char *const braille[] = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" };
        static const char *const ascii[] = { "|", "/", "-", "\\" };

        return unicode ? braille[frame % ELEMENTSOF(braille)] : ascii[frame % ELEMENTSOF(ascii)];
}

int progress_render_parts(const ProgressState *s, char **ret_left, char **ret_right) {
        char elapsed[32], remaining[32] = "?", rate[32], bytes[32] = "";
        double per_sec = 0, fraction;
        char *l = NULL, *r = NULL;

        fraction = s->total > 0 ? MIN((double) s->done / s->total, 1.0) : 0;
        if (s->elapsed_usec > 0)
                per_sec = (double) s->done * USEC_PER_SEC / s->elapsed_usec;

        progress_format_interval(s->elapsed_usec, elapsed, sizeof(elapsed));
        progress_format_rate(per_sec, rate, sizeof(rate));
        if (per_sec > 0 && s->total >= s->done)
                progress_format_interval((uint64_t) ((s->total - s->done) / per_sec * USEC_PER_SEC),
                                         remaining, sizeof(remaining));
        if (s->bytes > 0) {
                bytes[0] = ',';
                bytes[1] = ' ';
                format_bytes(s->bytes, bytes + 2, sizeof(bytes) - 2);
        }

        if (asprintf(&l, "%3.0f%%|", fraction * 100) < 0)
                return -ENOMEM;
        if (asprintf(&r, "| %u/%u [%s<%s, %s%s]", s->done, s->total, elapsed, remaining, rate, bytes) < 0) {
                free(l);
                return -ENOMEM;
        }

        *ret_left = l;
        *ret_right = r;
        return 0;
}

char *progress_render_bar(double fraction, unsigned width, bool unicode) {
        /* tqdm's Bar charsets: index 0 is empty, the last is a full cell, the rest are partial. */
        static const char *const utf8[] = { " ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█" };
        static const char *const ascii[] = { " ", "1", "2", "3", "4", "5", "6", "7", "8", "9", "#" };
        const char *const *set = unicode ? utf8 : ascii;
        unsigned nsyms = unicode ? ELEMENTSOF(utf8) - 1 : ELEMENTSOF(ascii) - 1;
        unsigned long units, full, partial;
        char *buf, *p;

        fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
        units = (unsigned long) (fraction * width * nsyms);
        full = units / nsyms;
        partial = units % nsyms;

        buf = malloc((size_t) width * 3 + 1);   /* every symbol is at most 3 bytes */
        if (!buf)
                return NULL;

        p = buf;
        for (unsigned i = 0; i < width; i++) {
                const char *sym = i < full ? set[nsyms] : i == full ? set[partial] : set[0];
                p = stpcpy(p, sym);
        }
        *p = 0;
        return buf;
}

static char *render_spinner(const ProgressState *s, unsigned columns, bool unicode) {
        char elapsed[32], *line = NULL;

        progress_format_interval(s->elapsed_usec, elapsed, sizeof(elapsed));
        if (asprintf(&line, "%s Waiting for the first result%s %u/%u [%s]",
                     progress_spinner(s->frame, unicode), unicode ? "…" : "...",
                     s->done, s->total, elapsed) < 0)
                return NULL;

        /* Too narrow: just the spinner and the count. */
        if (utf8_width(line) > columns) {
                free(line);
                if (asprintf(&line, "%s %u/%u", progress_spinner(s->frame, unicode), s->done, s->total) < 0)
                        return NULL;
        }
        return line;
}

char *progress_render(const ProgressState *s, unsigned columns, bool unicode) {
        _cleanup_free_ char *left = NULL, *right = NULL, *bar = NULL;
        size_t used;
        char *line = NULL;

        if (s->done == 0)
                return render_spinner(s, columns, unicode);

        if (progress_render_parts(s, &left, &right) < 0)
                return NULL;

        used = utf8_width(left) + utf8_width(right);
        if (used + 1 > columns) {
                /* No room for a bar: keep tqdm's counters, which matter more. */
                if (asprintf(&line, "%s", right + 2) < 0)
                        return NULL;
                return line;
        }

        /* Like tqdm, the bar takes whatever the counters leave of the line. */
        bar = progress_render_bar(s->total > 0 ? (double) s->done / s->total : 0,
                                  (unsigned) (columns - used), unicode);
        if (!bar)
                return NULL;

        if (asprintf(&line, "%s%s%s", left, bar, right) < 0)
                return NULL;
        return line;
}
