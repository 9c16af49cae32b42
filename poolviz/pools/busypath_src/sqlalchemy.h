/* poolviz.pools._busypath, part of: A SQLAlchemy pool's usual checkout and check-in (SQLAlchemyBusyPath).
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

/* ---- SQLAlchemy ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *tail;         /* the log's tail (list) */
    PyObject *serial_of;    /* id(driver connection) -> serial */
    PyObject *held_since;   /* serial -> perf_counter() at checkout */
    PyObject *fresh;        /* serials opened and not handed out yet (set) */
    PyObject *waited;       /* [callers whose wait is over and not yet on their checkout] */
    PyObject *counts;       /* [in_use, idle, waiting] */
    PyObject *busy;         /* [Python writers inside their locked section now] */
    PyObject *listening;    /* the log's `listening`: [True] while anyone listens */
    PyObject *thread_name;  /* poolviz.pools.callers.thread_name */
    PyObject *library;      /* poolviz.pools.sites' caches */
    PyObject *lines;
    PyObject *reused;       /* the payload of a reused checkout without a site */
    PyObject *reused_payload; /* poolviz.pools.sites.reused_payload: the walk in Python */
    PyObject *roll;         /* rolls the log's tail, taking the section, once it holds `chunk` records */
    Py_ssize_t chunk;
    int depth;              /* where the site walk starts, from the wrapper's frame */
    int sites;
    int asyncio;            /* an asyncio pool: its callers are tasks, named as tasks */
} BusyPath;

#define BUSYPATH_FIELDS(DO) \
    DO(tail) DO(serial_of) DO(held_since) DO(fresh) DO(waited) DO(counts) DO(busy) DO(listening) \
    DO(thread_name) DO(library) DO(lines) DO(reused) DO(reused_payload) DO(roll)

static int
BusyPath_traverse(BusyPath *self, visitproc visit, void *arg)
{
#define VISIT(field) Py_VISIT(self->field);
    BUSYPATH_FIELDS(VISIT)
#undef VISIT
    return 0;
}

static int
BusyPath_clear(BusyPath *self)
{
#define CLEAR(field) Py_CLEAR(self->field);
    BUSYPATH_FIELDS(CLEAR)
#undef CLEAR
    return 0;
}

static void
BusyPath_dealloc(BusyPath *self)
{
    PyObject_GC_UnTrack(self);
    BusyPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
BusyPath_init(BusyPath *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"tail", "serial_of", "held_since", "fresh", "waited", "counts", "busy",
                             "listening", "thread_name", "library", "lines", "reused", "reused_payload", "roll",
                             "chunk", "depth", "sites", "asyncio", NULL};
    PyObject *tail, *serial_of, *held_since, *fresh, *waited, *counts, *busy, *listening, *thread_name;
    PyObject *library, *lines, *reused, *reused_payload, *roll;
    Py_ssize_t chunk;
    int depth, sites, asyncio = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!O!O!O!O!OO!O!OOOnip|p", kwlist,
                                     &PyList_Type, &tail, &PyDict_Type, &serial_of, &PyDict_Type, &held_since,
                                     &PySet_Type, &fresh, &PyList_Type, &waited, &PyList_Type, &counts,
                                     &PyList_Type, &busy, &PyList_Type, &listening, &thread_name,
                                     &PyDict_Type, &library, &PyDict_Type, &lines, &reused, &reused_payload, &roll,
                                     &chunk, &depth, &sites, &asyncio)) {
        return -1;
    }
    if (PyList_GET_SIZE(counts) != 3 || PyList_GET_SIZE(waited) != 1 || PyList_GET_SIZE(busy) != 1) {
        PyErr_SetString(PyExc_ValueError, "counts must be [in_use, idle, waiting], waited [n] and busy [n]");
        return -1;
    }
    BusyPath_clear(self);
#define KEEP(field) Py_INCREF(field); self->field = field;
    BUSYPATH_FIELDS(KEEP)
#undef KEEP
    self->chunk = chunk;
    self->depth = depth;
    self->sites = sites;
    self->asyncio = asyncio;
    return 0;
}

/* Whether a one-item list holds a non-zero int (the list may have been emptied: then it does). */
static int
nonzero(PyObject *box)
{
    if (PyList_GET_SIZE(box) != 1) {
        return 1;
    }
    PyObject *value = PyList_GET_ITEM(box, 0);
    return !PyLong_CheckExact(value) || PyLong_AsLong(value) != 0;
}

/* Whether this is the usual case: no Python writer inside its section, nobody listening. */
static int
usual(BusyPath *self)
{
    if (nonzero(self->busy)) {
        return 0;
    }
    return PyList_GET_SIZE(self->listening) == 1 && PyList_GET_ITEM(self->listening, 0) == Py_False;
}

/* counts[index] += change; a borrowed reference to the new value, or NULL. */
static PyObject *
bump(PyObject *counts, Py_ssize_t index, long change)
{
    PyObject *old = PyList_GET_ITEM(counts, index);
    long value = PyLong_AsLong(old);
    if (value == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *now = PyLong_FromLong(value + change);
    if (now == NULL) {
        return NULL;
    }
    PyList_SET_ITEM(counts, index, now); /* the list's reference moves to the new value */
    Py_DECREF(old);
    return now;
}

/* Append the record (stealing it) and roll the tail once full. 0, or -1 on error. */
static int
append(BusyPath *self, PyObject *record)
{
    int failed = PyList_Append(self->tail, record);
    Py_DECREF(record);
    if (failed) {
        return -1;
    }
    if (PyList_GET_SIZE(self->tail) >= self->chunk) {
        PyObject *rolled = PyObject_CallNoArgs(self->roll);
        if (rolled == NULL) {
            return -1;
        }
        Py_DECREF(rolled);
    }
    return 0;
}

/* Move the counts (`out`: +1 a checkout, -1 a check-in), fill the record (now, kind, serial, name, in_use, idle,
   waiting, extra) made beforehand, append it, and answer True (NULL on error). It takes over `record`, `now`,
   `name` and `extra`; `kind` and `serial` are borrowed. */
static PyObject *
count_and_append(BusyPath *self, int out, PyObject *record, PyObject *now, PyObject *kind, PyObject *serial,
                 PyObject *name, PyObject *extra)
{
    PyObject *in_use = bump(self->counts, 0, out);
    PyObject *idle = in_use ? bump(self->counts, 1, -out) : NULL;
    if (idle == NULL) {
        Py_DECREF(record);
        Py_DECREF(now);
        Py_DECREF(name);
        Py_DECREF(extra);
        return NULL;
    }
    PyTuple_SET_ITEM(record, 0, now);
    PyTuple_SET_ITEM(record, 1, Py_NewRef(kind));
    PyTuple_SET_ITEM(record, 2, Py_NewRef(serial));
    PyTuple_SET_ITEM(record, 3, name);
    PyTuple_SET_ITEM(record, 4, Py_NewRef(in_use));
    PyTuple_SET_ITEM(record, 5, Py_NewRef(idle));
    PyTuple_SET_ITEM(record, 6, Py_NewRef(PyList_GET_ITEM(self->counts, 2)));
    PyTuple_SET_ITEM(record, 7, extra);
    if (append(self, untracked_record(record)) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* The usual checkout and check-in run whole between two bytecodes of every other thread: after the
   caller's name (asked of Python once per thread) and the record's tuple (whose allocation may start a
   garbage collection, which may run Python code) are at hand, nothing is called that could run Python
   code or let another thread in, until the record is in the tail. The roll comes after. */

/* checkout(dbapi_connection) -> bool: recorded the usual checkout of an idle connection (False: the Python must). */
static PyObject *
BusyPath_checkout(BusyPath *self, PyObject *dbapi_connection)
{
    PyObject *name = task_or_thread_name(self->asyncio, self->thread_name);
    if (name == NULL) {
        return NULL;
    }
    /* The site: cached, or the Python walk's (a code object or line not seen yet, or the caller in the greenlet
       that switched into this one: SQLAlchemy's AsyncEngine), asked before anything shared is read. */
    PyObject *extra = self->sites ? walk(self->depth, self->library, self->lines) : Py_NewRef(self->reused);
    if (extra == Py_None) {
        Py_DECREF(extra);
        PyObject *depth = PyLong_FromLong(self->depth + 1); /* from reused_payload's frame: the wrapper is 1 */
        extra = depth ? PyObject_CallOneArg(self->reused_payload, depth) : NULL;
        Py_XDECREF(depth);
    }
    PyObject *record = extra ? PyTuple_New(8) : NULL;
    if (record == NULL) {
        Py_DECREF(name);
        Py_XDECREF(extra);
        return NULL;
    }
    PyObject *serial = NULL;
    /* waited: someone's wait is over, maybe this caller's */
    if (!usual(self) || nonzero(self->waited)) {
        goto not_mine;
    }
    PyObject *key = PyLong_FromVoidPtr(dbapi_connection);
    if (key == NULL) {
        goto not_mine;
    }
    serial = PyDict_GetItemWithError(self->serial_of, key); /* borrowed */
    Py_DECREF(key);
    if (serial == NULL || PySet_Contains(self->fresh, serial) != 0) {
        goto not_mine; /* adopted while out, or its first checkout */
    }
    PyObject *now = PyFloat_FromDouble(perf_counter());
    if (now == NULL || PyDict_SetItem(self->held_since, serial, now) < 0) {
        Py_XDECREF(now);
        goto not_mine;
    }
    return count_and_append(self, 1, record, now, str_checkout, serial, name, extra);

not_mine:
    Py_DECREF(name);
    Py_DECREF(record);
    Py_XDECREF(extra);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_FALSE;
}

/* checkin(dbapi_connection) -> bool: recorded the usual check-in (False: the Python must). */
static PyObject *
BusyPath_checkin(BusyPath *self, PyObject *dbapi_connection)
{
    PyObject *name = task_or_thread_name(self->asyncio, self->thread_name);
    if (name == NULL) {
        return NULL;
    }
    PyObject *record = PyTuple_New(8);
    if (record == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    if (!usual(self)) {
        goto not_mine;
    }
    PyObject *key = PyLong_FromVoidPtr(dbapi_connection);
    if (key == NULL) {
        goto not_mine;
    }
    PyObject *serial = PyDict_GetItemWithError(self->serial_of, key); /* borrowed */
    Py_DECREF(key);
    if (serial == NULL) {
        goto not_mine; /* out since before instrument(): the Python gives it a serial */
    }
    PyObject *now = PyFloat_FromDouble(perf_counter());
    if (now == NULL) {
        goto not_mine;
    }
    PyObject *since = PyDict_GetItemWithError(self->held_since, serial); /* borrowed */
    if (since != NULL) {
        Py_INCREF(since);
        if (PyDict_DelItem(self->held_since, serial) < 0) {
            Py_DECREF(since);
            Py_DECREF(now);
            goto not_mine;
        }
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(now);
        goto not_mine;
    }
    else {
        since = Py_NewRef(now);
    }
    return count_and_append(self, -1, record, now, str_checkin, serial, name, since);

not_mine:
    Py_DECREF(name);
    Py_DECREF(record);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef BusyPath_methods[] = {
    {"checkout", (PyCFunction)BusyPath_checkout, METH_O,
     "checkout(dbapi_connection) -> bool: record the usual checkout (False: not the usual case, nothing done)."},
    {"checkin", (PyCFunction)BusyPath_checkin, METH_O,
     "checkin(dbapi_connection) -> bool: record the usual check-in (False: not the usual case, nothing done)."},
    {NULL},
};

static PyTypeObject BusyPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "poolviz.pools._busypath.SQLAlchemyBusyPath",
    .tp_doc = "A SQLAlchemy pool's usual checkout and checkin, recorded into its event log.",
    .tp_basicsize = sizeof(BusyPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)BusyPath_init,
    .tp_dealloc = (destructor)BusyPath_dealloc,
    .tp_traverse = (traverseproc)BusyPath_traverse,
    .tp_clear = (inquiry)BusyPath_clear,
    .tp_methods = BusyPath_methods,
};
