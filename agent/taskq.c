/* SPDX-License-Identifier: Apache-2.0 */
/* A locked FIFO of closures with an optional eventfd: how the agent's link and worker
 * threads hand results to the main thread, and how the main thread feeds the worker. */
#define _GNU_SOURCE

#include "taskq.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct Task {
        TaskFunc run;
        TaskFunc destroy;
        void *data;
        struct Task *next;
} Task;

struct TaskQueue {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Task *head, *tail;
        int efd;
        bool closed;
};

int taskq_new(bool with_eventfd, TaskQueue **ret) {
        TaskQueue *q = calloc(1, sizeof(*q));

        if (!q)
                return -ENOMEM;
        q->efd = -EBADF;
        if (with_eventfd) {
                q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (q->efd < 0) {
                        int r = -errno;
                        free(q);
                        return r;
                }
        }
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
        *ret = q;
        return 0;
}

static void tasks_destroy(Task *t) {
        while (t) {
                Task *next = t->next;
                if (t->destroy)
                        t->destroy(t->data);
                free(t);
                t = next;
        }
}

void taskq_close(TaskQueue *q) {
        Task *list;

        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        q->closed = true;
        list = q->head;
        q->head = q->tail = NULL;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        tasks_destroy(list);
}

TaskQueue *taskq_free(TaskQueue *q) {
        if (!q)
                return NULL;
        taskq_close(q);
        if (q->efd >= 0)
                close(q->efd);
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
}

static int push(TaskQueue *q, TaskFunc run, TaskFunc destroy, void *data, bool front) {
        Task *t;

        if (!q || !run)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        *t = (Task){.run = run, .destroy = destroy, .data = data};
        pthread_mutex_lock(&q->lock);
        if (q->closed) {
                pthread_mutex_unlock(&q->lock);
                free(t);
                return -ESHUTDOWN;
        }
        if (front) {
                t->next = q->head;
                q->head = t;
                if (!q->tail)
                        q->tail = t;
        } else {
                if (q->tail)
                        q->tail->next = t;
                else
                        q->head = t;
                q->tail = t;
        }
        pthread_cond_signal(&q->cond);
        if (q->efd >= 0)
                (void) eventfd_write(q->efd, 1);
        pthread_mutex_unlock(&q->lock);
        return 0;
}

int taskq_push(TaskQueue *q, TaskFunc run, TaskFunc destroy, void *data) {
        return push(q, run, destroy, data, false);
}

int taskq_push_front(TaskQueue *q, TaskFunc run, TaskFunc destroy, void *data) {
        return push(q, run, destroy, data, true);
}

int taskq_fd(TaskQueue *q) {
        return q ? q->efd : -EBADF;
}

size_t taskq_dispatch(TaskQueue *q) {
        eventfd_t v;
        Task *list;
        size_t n = 0;

        if (q->efd >= 0)
                (void) eventfd_read(q->efd, &v);
        pthread_mutex_lock(&q->lock);
        list = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        while (list) {
                Task *t = list;
                list = t->next;
                t->run(t->data);
                free(t);
                n++;
        }
        return n;
}

int taskq_run(TaskQueue *q) {
        for (;;) {
                Task *t;

                pthread_mutex_lock(&q->lock);
                while (!q->head && !q->closed)
                        pthread_cond_wait(&q->cond, &q->lock);
                if (q->closed) {
                        pthread_mutex_unlock(&q->lock);
                        return 0;
                }
                t = q->head;
                q->head = t->next;
                if (!q->head)
                        q->tail = NULL;
                pthread_mutex_unlock(&q->lock);
                t->run(t->data);
                free(t);
        }
}

int taskq_thread_create(pthread_t *ret, void *(*fn)(void *), void *arg) {
        static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
        sigset_t set, old;
        int r;

        sigfillset(&set);
        for (size_t i = 0; i < ELEMENTSOF(sync_signals); i++)
                sigdelset(&set, sync_signals[i]);
        r = pthread_sigmask(SIG_BLOCK, &set, &old);
        if (r != 0)
                return -r;
        r = pthread_create(ret, NULL, fn, arg);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -r;
}
