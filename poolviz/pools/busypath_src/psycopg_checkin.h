/* poolviz.pools._busypath, part of: psycopg_pool: the check-in side (_add_to_pool).
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

/* The usual check-in, if it is one: checked out until now, not leaked, and idle at the deque's end (not handed to a
   waiter, not closed). 1 recorded, 0 not the usual case, -1 error. Holding the pool lock. */
static int
psycopg_checkin(PsycopgPath *self, PyObject *conn)
{
    Tracked *info = tracked(self, conn);
    if (info == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (info->checked_out == Py_None || info->leaked != Py_False || !PyFloat_Check(info->checked_out)) {
        return 0;
    }
    Py_ssize_t idle = PyObject_Length(self->idle_deque);
    if (idle <= 0) {
        return idle < 0 ? -1 : 0;
    }
    PyObject *last = PySequence_GetItem(self->idle_deque, idle - 1);
    if (last == NULL) {
        return -1;
    }
    Py_DECREF(last); /* (only compared) */
    if (last != conn) {
        return 0;
    }
    /* Held from its checkout until putconn(): the payload is the float `since`, duration_s = now - since
       (poolviz.events.store), as Recorder._pv_landed writes it. */
    double now = perf_counter();
    double until = PyFloat_Check(info->returned) ? PyFloat_AS_DOUBLE(info->returned) : now;
    PyObject *since = PyFloat_FromDouble(now - (until - PyFloat_AS_DOUBLE(info->checked_out)));
    PyObject *stamp = since ? PyFloat_FromDouble(now) : NULL;
    PyObject *record = stamp ? psycopg_record(self, stamp, str_checkin, info->serial, info->held_by, since) : NULL;
    Py_XDECREF(since);
    Py_XDECREF(stamp);
    if (record == NULL) {
        return -1;
    }
    SET_FIELD(info, checked_out, Py_None);
    SET_FIELD(info, state, int_idle);
    return psycopg_append(self, record, str_checkin) < 0 ? -1 : 1;
}

/* _add_to_pool(conn) returned: conn is idle in the pool, with a waiting caller, or closed. 0, or -1 on error. */
static int
landed(PsycopgPath *self, PyObject *conn)
{
    int recorded = self->asyncio && listened(self) ? 0 : psycopg_checkin(self, conn);
    if (recorded != 0) {
        return recorded < 0 ? -1 : 0;
    }
    /* new, handed to a waiter, closed, leaked: the Python's */
    PyObject *done = call_pool(self, self->asyncio ? str_pv_landed_locked : str_pv_landed, conn, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* _add_to_pool(conn): psycopg_pool's, holding the pool lock around it, so conn is seen where psycopg_pool put it. */
static PyObject *
Psycopg_add_to_pool(PsycopgPath *self, PyObject *conn)
{
    if (lock_take(self) < 0) {
        return NULL;
    }
    PyObject *call_args[2] = {self->pool, conn};
    PyObject *done = PyObject_Vectorcall(self->next_add_to_pool, call_args, 2, NULL);
    int failed = done == NULL;
    Py_XDECREF(done);
    failed = failed || landed(self, conn) < 0;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (lock_drop(self) < 0) {
        if (type != NULL) {
            PyErr_Clear();
            PyErr_Restore(type, value, traceback);
        }
        return NULL;
    }
    if (type != NULL) {
        PyErr_Restore(type, value, traceback);
        return NULL;
    }
    if (deliver(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}
