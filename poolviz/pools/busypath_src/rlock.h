/* poolviz.pools._busypath, part of: psycopg_pool's lock, taken on threading.RLock's own fields when that costs nothing.
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

/* ---- the pool's lock -------------------------------------------------------------------------

   psycopg_pool's lock is a threading.RLock, whose acquire() parses its arguments as keywords: that
   parsing costs more than the rest of a check-in's bookkeeping. When taking it costs nothing (free,
   or held by this thread), the busy path takes it as RLock.acquire() does, on the lock's own fields;
   otherwise it calls acquire(), which waits as always. Only on CPython versions whose RLock has the
   layout below, and only if a probe at import finds it there (rlock_type stays NULL otherwise). */

typedef struct {
    PyObject_HEAD
    PyThread_type_lock rlock_lock;
    unsigned long rlock_owner;
    unsigned long rlock_count;
    PyObject *in_weakreflist;
} rlock_layout;

/* Whether RLock objects are laid out as rlock_layout: acquired and released through their methods, and read. */
static void
probe_rlock(void)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    PyObject *thread = PyImport_ImportModule("_thread");
    PyObject *type = thread ? PyObject_GetAttrString(thread, "RLock") : NULL;
    PyObject *lock = type && PyType_Check(type) ? PyObject_CallNoArgs(type) : NULL;
    int fits = lock != NULL && ((PyTypeObject *)type)->tp_basicsize == (Py_ssize_t)sizeof(rlock_layout);
    if (fits) {
        rlock_layout *r = (rlock_layout *)lock;
        unsigned long me = PyThread_get_thread_ident();
        fits = r->rlock_count == 0;
        for (int depth = 1; fits && depth <= 2; depth++) {
            PyObject *got = PyObject_CallMethod(lock, "acquire", NULL);
            fits = got == Py_True && r->rlock_owner == me && r->rlock_count == (unsigned long)depth;
            Py_XDECREF(got);
        }
        for (int depth = 1; fits && depth >= 0; depth--) {
            PyObject *done = PyObject_CallMethod(lock, "release", NULL);
            fits = done != NULL && r->rlock_count == (unsigned long)depth && (depth > 0 || r->rlock_owner == 0);
            Py_XDECREF(done);
        }
    }
    PyErr_Clear();
    if (fits) {
        rlock_type = (PyTypeObject *)Py_NewRef(type);
    }
    Py_XDECREF(lock);
    Py_XDECREF(type);
    Py_XDECREF(thread);
#endif
}

/* Take the pool lock: 0, or -1 on error. */
static int
lock_take(PsycopgPath *self)
{
    if (self->plain_rlock) {
        rlock_layout *r = (rlock_layout *)self->lock;
        unsigned long me = PyThread_get_thread_ident();
        if (r->rlock_count > 0 && r->rlock_owner == me) {
            r->rlock_count++;
            return 0;
        }
        if (PyThread_acquire_lock(r->rlock_lock, NOWAIT_LOCK)) {
            r->rlock_owner = me;
            r->rlock_count = 1;
            return 0;
        }
    }
    PyObject *got = PyObject_CallNoArgs(self->acquire); /* waits, letting other threads run */
    Py_XDECREF(got);
    return got == NULL ? -1 : 0;
}

/* Let the pool lock go: 0, or -1 on error. */
static int
lock_drop(PsycopgPath *self)
{
    if (self->plain_rlock) {
        rlock_layout *r = (rlock_layout *)self->lock;
        if (r->rlock_count > 0 && r->rlock_owner == PyThread_get_thread_ident()) {
            if (--r->rlock_count == 0) {
                r->rlock_owner = 0;
                PyThread_release_lock(r->rlock_lock);
            }
            return 0;
        }
    }
    PyObject *done = PyObject_CallNoArgs(self->release);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}
