/* SPDX-License-Identifier: MIT */
/* list: intrusive doubly-linked lists with O(1) unlink, so an object can leave any queue it is on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

typedef struct ListLink {
        struct ListLink *prev, *next;
} ListLink;

/* An empty list head points at itself; a link that is on no list has NULL pointers. */
#define LIST_HEAD_INIT(name) { &(name), &(name) }

static inline void list_init(ListLink *head) {
        head->prev = head->next = head;
}

static inline bool list_is_empty(const ListLink *head) {
        return head->next == head;
}

static inline bool list_is_linked(const ListLink *link) {
        return link->next != NULL;
}

static inline void list_append(ListLink *head, ListLink *link) {
        link->prev = head->prev;
        link->next = head;
        head->prev->next = link;
        head->prev = link;
}

static inline void list_unlink(ListLink *link) {
        if (!list_is_linked(link))
                return;
        link->prev->next = link->next;
        link->next->prev = link->prev;
        link->prev = link->next = NULL;
}

/* Moves every link of from to the end of to, leaving from empty. */
static inline void list_splice_tail(ListLink *to, ListLink *from) {
        if (list_is_empty(from))
                return;
        from->next->prev = to->prev;
        to->prev->next = from->next;
        from->prev->next = to;
        to->prev = from->prev;
        list_init(from);
}

static inline ListLink *list_first(const ListLink *head) {
        return list_is_empty(head) ? NULL : head->next;
}

#define list_entry(link, type, member) ((link) ? container_of(link, type, member) : NULL)

/* Safe against unlinking the current entry. */
#define LIST_FOREACH(head, it, tmp) \
        for (ListLink *it = (head)->next, *tmp = it->next; it != (head); it = tmp, tmp = it->next)
