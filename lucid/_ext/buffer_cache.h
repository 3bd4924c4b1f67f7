/* A numpy memory handler (NEP 49) that keeps large freed buffers for reuse.
 *
 * Why: the first write to a fresh array of hundreds of megabytes makes the
 * operating system find, zero and map every page of it. For a training
 * step's input-sized gradient that costs as much as reading both inputs
 * (bench_distillation.py --breakdown), on the same cores, and more when huge
 * pages have to be assembled. A step frees last step's gradient just before
 * it makes this one, of the same size: handing that memory back, already
 * mapped, saves all of it.
 *
 * Only arrays made while this handler is numpy's current one (_cache.pyx's
 * empty) come from here; numpy calls lucid_cache_free when such an array
 * goes, whatever made it go. Blocks of at least LUCID_CACHE_MIN_BYTES are
 * kept, newest first, up to `limit` bytes in all (the oldest leave first);
 * smaller ones, and everything once the limit is 0, go to the C library at
 * once. A block is reused only for a request of exactly its size, so a
 * buffer never holds more memory than its array; a request the C library
 * refuses frees every kept block and asks once more. Every entry point takes
 * the lock: numpy may free arrays on any thread.
 */
#ifndef LUCID_BUFFER_CACHE_H
#define LUCID_BUFFER_CACHE_H

#include <Python.h>
#include <pythread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <numpy/arrayobject.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#define LUCID_CACHE_MIN_BYTES ((size_t)16 << 20)
#define LUCID_CACHE_SLOTS 16

typedef struct {
    void *ptr;
    size_t size;
} lucid_cache_block;

typedef struct {
    PyThread_type_lock lock;
    lucid_cache_block blocks[LUCID_CACHE_SLOTS]; /* newest at [count - 1] */
    int count;
    size_t held, limit;
    unsigned long long reused; /* requests served from the cache */
} lucid_cache;

static lucid_cache lucid_cache_state = {NULL, {{NULL, 0}}, 0, 0, (size_t)2 << 30, 0};

/* Ask for huge pages, as numpy does for its own large arrays: without them
 * a 512 MB buffer takes 131,072 page faults instead of 256. */
static void lucid_cache_hugepages(void *ptr, size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t page = 4096, start = ((uintptr_t)ptr + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)ptr + size) & ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)ptr;
    (void)size;
#endif
}

/* Drops block i (its memory stays with the caller). */
static void lucid_cache_take(lucid_cache *c, int i)
{
    c->held -= c->blocks[i].size;
    memmove(c->blocks + i, c->blocks + i + 1, (size_t)(c->count - i - 1) * sizeof(c->blocks[0]));
    c->count--;
}

/* Frees the oldest blocks until at most `bytes` in at most `blocks` blocks
 * are left. Returns the number of bytes freed. Lock held. */
static size_t lucid_cache_shrink(lucid_cache *c, size_t bytes, int blocks)
{
    size_t freed = 0;
    while (c->count > 0 && (c->held > bytes || c->count > blocks)) {
        void *ptr = c->blocks[0].ptr;
        freed += c->blocks[0].size;
        lucid_cache_take(c, 0);
        free(ptr);
    }
    return freed;
}

/* Frees every block (the limit stays); returns the bytes freed. */
static size_t lucid_cache_release(void)
{
    lucid_cache *c = &lucid_cache_state;
    PyThread_acquire_lock(c->lock, WAIT_LOCK);
    size_t freed = lucid_cache_shrink(c, 0, 0);
    PyThread_release_lock(c->lock);
    return freed;
}

static void *lucid_cache_malloc(void *ctx, size_t size)
{
    lucid_cache *c = (lucid_cache *)ctx;
    void *ptr = NULL;
    if (size >= LUCID_CACHE_MIN_BYTES) {
        PyThread_acquire_lock(c->lock, WAIT_LOCK);
        for (int i = c->count - 1; i >= 0; i--) {
            if (c->blocks[i].size == size) {
                ptr = c->blocks[i].ptr;
                lucid_cache_take(c, i);
                c->reused++;
                break;
            }
        }
        PyThread_release_lock(c->lock);
        if (ptr != NULL)
            return ptr;
    }
    ptr = malloc(size);
    if (ptr == NULL && size >= LUCID_CACHE_MIN_BYTES && lucid_cache_release() > 0)
        ptr = malloc(size); /* the blocks kept may be what the system lacks */
    if (ptr != NULL && size >= LUCID_CACHE_MIN_BYTES)
        lucid_cache_hugepages(ptr, size);
    return ptr;
}

/* Zeroed memory (np.zeros): never from the cache, whose blocks are dirty. */
static void *lucid_cache_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    return calloc(nelem, elsize);
}

static void *lucid_cache_realloc(void *ctx, void *ptr, size_t new_size)
{
    (void)ctx;
    return realloc(ptr, new_size);
}

static void lucid_cache_free(void *ctx, void *ptr, size_t size)
{
    lucid_cache *c = (lucid_cache *)ctx;
    if (ptr == NULL)
        return;
    if (size >= LUCID_CACHE_MIN_BYTES) {
        PyThread_acquire_lock(c->lock, WAIT_LOCK);
        if (size <= c->limit) {
            lucid_cache_shrink(c, c->limit - size, LUCID_CACHE_SLOTS - 1);
            c->blocks[c->count].ptr = ptr;
            c->blocks[c->count].size = size;
            c->count++;
            c->held += size;
            ptr = NULL;
        }
        PyThread_release_lock(c->lock);
    }
    free(ptr);
}

static PyDataMem_Handler lucid_cache_handler = {
    "lucid_buffer_cache",
    1,
    {&lucid_cache_state, lucid_cache_malloc, lucid_cache_calloc, lucid_cache_realloc,
     lucid_cache_free},
};

/* Sets the limit (freeing the oldest blocks down to it) and returns the old
 * one; frees every block for a limit of 0. */
static size_t lucid_cache_set_limit(size_t limit)
{
    lucid_cache *c = &lucid_cache_state;
    PyThread_acquire_lock(c->lock, WAIT_LOCK);
    size_t old = c->limit;
    c->limit = limit;
    lucid_cache_shrink(c, limit, LUCID_CACHE_SLOTS);
    PyThread_release_lock(c->lock);
    return old;
}

/* The bytes held, how many blocks, the requests served from them, the limit. */
static void lucid_cache_stats(size_t *held, int *count, unsigned long long *reused,
                              size_t *limit)
{
    lucid_cache *c = &lucid_cache_state;
    PyThread_acquire_lock(c->lock, WAIT_LOCK);
    *held = c->held;
    *count = c->count;
    *reused = c->reused;
    *limit = c->limit;
    PyThread_release_lock(c->lock);
}

#endif /* LUCID_BUFFER_CACHE_H */
