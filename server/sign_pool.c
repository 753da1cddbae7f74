/* SPDX-License-Identifier: Apache-2.0 */
/* The signing thread pool (sign_pool.h): one FIFO under one mutex, threads waiting on a
 * condition variable. */
#define _GNU_SOURCE

#include "sign_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct SignPool {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        SignJob *head, *tail; /* waiting jobs, oldest first */
        size_t n_queued;
        bool stopping;
        bool stopped; /* threads joined */
        pthread_t *threads;
        unsigned n_threads;
};

unsigned sign_pool_default_threads(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        if (n < 1)
                return 1;
        return n > SIGN_POOL_THREADS_MAX ? SIGN_POOL_THREADS_MAX : (unsigned) n;
}

static void *pool_thread(void *userdata) {
        SignPool *p = userdata;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                SignJob *j;

                while (!p->head && !p->stopping)
                        pthread_cond_wait(&p->wake, &p->lock);
                if (p->stopping)
                        break;
                j = p->head;
                p->head = j->next;
                if (!p->head)
                        p->tail = NULL;
                p->n_queued--;
                pthread_mutex_unlock(&p->lock);
                j->next = NULL;
                j->run(j);
                pthread_mutex_lock(&p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int sign_pool_new(unsigned n_threads, SignPool **ret) {
        SignPool *p;
        int r;

        if (n_threads == 0 || n_threads > SIGN_POOL_THREADS_MAX || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(SignPool));
        if (!p)
                return -ENOMEM;
        p->threads = calloc(n_threads, sizeof(pthread_t));
        if (!p->threads) {
                free(p);
                return -ENOMEM;
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        for (; p->n_threads < n_threads; p->n_threads++) {
                r = pthread_create(&p->threads[p->n_threads], NULL, pool_thread, p);
                if (r != 0) {
                        sign_pool_free(p);
                        return -r;
                }
        }
        *ret = p;
        return 0;
}

int sign_pool_submit(SignPool *p, SignJob *j) {
        int r = 0;

        if (!p || !j || !j->run || !j->cancel)
                return -EINVAL;
        j->next = NULL;
        pthread_mutex_lock(&p->lock);
        if (p->stopping)
                r = -ESHUTDOWN;
        else if (p->n_queued >= SIGN_POOL_QUEUE_MAX)
                r = -EBUSY;
        else {
                if (p->tail)
                        p->tail->next = j;
                else
                        p->head = j;
                p->tail = j;
                p->n_queued++;
                pthread_cond_signal(&p->wake);
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

size_t sign_pool_queued(SignPool *p) {
        size_t n;

        if (!p)
                return 0;
        pthread_mutex_lock(&p->lock);
        n = p->n_queued;
        pthread_mutex_unlock(&p->lock);
        return n;
}

void sign_pool_stop(SignPool *p) {
        SignJob *j;

        if (!p || p->stopped)
                return;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        j = p->head;
        p->head = p->tail = NULL;
        p->n_queued = 0;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        while (j) {
                SignJob *next = j->next;

                j->next = NULL;
                j->cancel(j);
                j = next;
        }
        for (unsigned i = 0; i < p->n_threads; i++)
                (void) pthread_join(p->threads[i], NULL);
        p->stopped = true;
}

SignPool *sign_pool_free(SignPool *p) {
        if (!p)
                return NULL;
        sign_pool_stop(p);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p->threads);
        free(p);
        return NULL;
}
