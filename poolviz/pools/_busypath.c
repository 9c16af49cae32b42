/* poolviz.pools._busypath: the compiled half of the busy path (a checkout and its check-in).

   Optional. Built when a C compiler is at hand (setup.py), used unless
   POOLVIZ_PURE_PYTHON is set (poolviz/pools/busypath.py). Every function
   here does what the Python beside its caller does, records the usual case
   itself, and hands anything else to that same Python (by answering "not
   mine", or by calling the hook's own Python method). tests/test_busypath.py
   runs each library's script both ways and compares the events.

   payload_at(depth, library, lines)
       sites.reused_payload's walk: the cached payload of the first
       application frame from sys._getframe(depth) outwards (as seen from
       the Python function calling this), or None when the walk meets a
       code object or an instruction offset it has not cached yet, or runs
       off this greenlet's stack.

   SQLAlchemyBusyPath(...)
       A SQLAlchemy pool's usual checkout and check-in, recorded as
       poolviz.pools.sqlalchemy.observer's busy_path does in Python,
       without the log's lock: each runs whole between two bytecodes of
       every other thread (see "The usual checkout and check-in run whole").

   Tracked, PsycopgBusyPath(...), Step
       A psycopg_pool pool's connection record as a struct, its four hooked
       methods (poolviz.pools.psycopg.fast), and the awaitable an asyncio
       pool's hooked method returns.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* 3.11: walk the interpreter's own frames, as sys._getframe() does, without making a frame object
   for each (a frame object made for a walk costs more than the walk, and again when the frame ends). */
#define POOLVIZ_INTERPRETER_FRAMES 1
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include "internal/pycore_frame.h"
#endif

static double
perf_counter(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);
    return PyTime_AsSecondsDouble(t);
#else
    return _PyTime_AsSecondsDouble(_PyTime_GetPerfCounter());
#endif
}

/* A cache in front of poolviz.pools.sites' dicts, which are keyed by id(code): ids are addresses, all multiples
   of 16, and such keys collide in a dict's first probes, so a lookup there costs several times an ordinary one.
   Here (code, offset) -> payload, or (code, LIBRARY) for library code, in an open-addressing table keyed by the
   pointer, holding references to what it keeps (so no address is reused while cached). It learns only what the
   dicts answered, so it is never ahead of them; full, it starts again. */

#define LIBRARY (-2)
#define SEEN_BITS 12
#define SEEN_SLOTS (1 << SEEN_BITS)
#define SEEN_LIMIT (SEEN_SLOTS / 2)

typedef struct {
    PyObject *code; /* NULL: empty */
    int lasti;      /* LIBRARY, or the instruction offset of `payload` */
    PyObject *payload;
} SeenEntry;

static SeenEntry seen[SEEN_SLOTS];
static int seen_count;

static inline size_t
seen_slot(PyObject *code, int lasti)
{
    uint64_t key = ((uint64_t)(uintptr_t)code >> 4) ^ ((uint64_t)(uint32_t)lasti << 40);
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - SEEN_BITS));
}

/* The payload cached for (code, lasti), or LIBRARY's marker: borrowed, NULL when not cached. */
static inline PyObject *
seen_get(PyObject *code, int lasti)
{
    for (size_t i = seen_slot(code, lasti);; i = (i + 1) & (SEEN_SLOTS - 1)) {
        SeenEntry *entry = &seen[i];
        if (entry->code == NULL) {
            return NULL;
        }
        if (entry->code == code && entry->lasti == lasti) {
            return entry->payload;
        }
    }
}

static void
seen_put(PyObject *code, int lasti, PyObject *payload)
{
    if (seen_count >= SEEN_LIMIT) {
        for (size_t i = 0; i < SEEN_SLOTS; i++) {
            Py_CLEAR(seen[i].code);
            Py_CLEAR(seen[i].payload);
        }
        seen_count = 0;
    }
    size_t i = seen_slot(code, lasti);
    while (seen[i].code != NULL) {
        if (seen[i].code == code && seen[i].lasti == lasti) {
            return;
        }
        i = (i + 1) & (SEEN_SLOTS - 1);
    }
    seen[i].code = Py_NewRef(code);
    seen[i].lasti = lasti;
    seen[i].payload = Py_NewRef(payload);
    seen_count++;
}

/* The cached payload at `code`, instruction offset `lasti` (in bytes, as f_lasti): a new reference;
   Py_None when not cached, or when `code` is library code (*library set); NULL on error. */
static PyObject *
cached_payload(PyObject *code, int lasti, PyObject *library, PyObject *lines, int *is_library)
{
    PyObject *known = seen_get(code, LIBRARY);
    if (known != NULL) {
        *is_library = 1;
        Py_RETURN_NONE;
    }
    known = seen_get(code, lasti);
    if (known != NULL) {
        *is_library = 0;
        return Py_NewRef(known);
    }
    PyObject *key = PyLong_FromVoidPtr(code); /* id(code) */
    if (key == NULL) {
        return NULL;
    }
    *is_library = PyDict_Contains(library, key);
    if (*is_library != 0) {
        Py_DECREF(key);
        if (*is_library < 0) {
            return NULL;
        }
        seen_put(code, LIBRARY, Py_None);
        Py_RETURN_NONE;
    }
    PyObject *entry = PyDict_GetItemWithError(lines, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE; /* not classified yet */
    }
    PyObject *offset = PyLong_FromLong(lasti);
    if (offset == NULL) {
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(PyTuple_GET_ITEM(entry, 1), offset);
    Py_DECREF(offset);
    if (found == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE; /* a line not seen yet */
    }
    seen_put(code, lasti, found);
    return Py_NewRef(found);
}

/* The walk. Returns a new reference to the payload, Py_None when the Python walk must answer, NULL on error. */
#ifdef POOLVIZ_INTERPRETER_FRAMES
static PyObject *
walk(int depth, PyObject *library, PyObject *lines)
{
    /* sys._getframe(depth), as seen from the Python function calling this one */
    _PyInterpreterFrame *frame = PyThreadState_Get()->cframe->current_frame;
    while (frame != NULL && _PyFrame_IsIncomplete(frame)) {
        frame = frame->previous;
    }
    while (depth > 0 && frame != NULL) {
        frame = frame->previous;
        if (frame != NULL && !_PyFrame_IsIncomplete(frame)) {
            depth--;
        }
    }
    for (; frame != NULL; frame = frame->previous) {
        if (_PyFrame_IsIncomplete(frame)) {
            continue;
        }
        int lasti = _PyInterpreterFrame_LASTI(frame);
        int is_library = 0;
        PyObject *found = cached_payload((PyObject *)frame->f_code, lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT),
                                         library, lines, &is_library);
        if (found == NULL || !is_library) {
            return found;
        }
        Py_DECREF(found);
    }
    Py_RETURN_NONE; /* off this greenlet's stack */
}
#else
static PyObject *
walk(int depth, PyObject *library, PyObject *lines)
{
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed: the Python caller's frame */
    Py_XINCREF(frame);
    for (int i = 0; i < depth && frame != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
#if PY_VERSION_HEX >= 0x030B0000
        int lasti = PyFrame_GetLasti(frame);
#else
        int lasti = frame->f_lasti < 0 ? -1 : frame->f_lasti * 2;
#endif
        int is_library = 0;
        PyObject *found = cached_payload((PyObject *)code, lasti, library, lines, &is_library);
        Py_DECREF(code);
        if (found == NULL || !is_library) {
            Py_DECREF(frame);
            return found;
        }
        Py_DECREF(found);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_RETURN_NONE; /* off this greenlet's stack */
}
#endif

static PyObject *
payload_at(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "payload_at(depth, library: dict, lines: dict)");
        return NULL;
    }
    int depth = (int)PyLong_AsLong(args[0]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return walk(depth, args[1], args[2]);
}

/* A record or payload made here holds only numbers, strings, None and payloads already untracked: it can hold
   no reference cycle, and the garbage collector would untrack it at its first collection anyway (as it does a
   tuple the Python makes). Untracked now, it never costs a collection the time to look at it. */
static inline PyObject *
untracked(PyObject *tuple)
{
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (item != NULL && PyObject_IS_GC(item) && PyObject_GC_IsTracked(item)) {
            return tuple;
        }
    }
    PyObject_GC_UnTrack(tuple);
    return tuple;
}

/* ---- the caller's name ------------------------------------------------------------------ */

static PyObject *str_checkout, *str_checkin, *key_thread_name;

/* The last thread asked for (its thread state's id, unique for the interpreter's life) and its name. */
static uint64_t last_thread_id;
static PyObject *last_thread_name;

/* This thread's name, kept in the thread state's own dict (gone with the thread), asked of `ask` (a Python
   callable: poolviz.pools.callers.thread_name) once per thread. A new reference, or NULL on error. */
static PyObject *
thread_name(PyObject *ask)
{
    PyThreadState *state = PyThreadState_Get();
    uint64_t id = PyThreadState_GetID(state);
    if (id == last_thread_id && last_thread_name != NULL) {
        return Py_NewRef(last_thread_name);
    }
    PyObject *mine = PyThreadState_GetDict(); /* borrowed */
    if (mine == NULL) {
        return PyObject_CallNoArgs(ask);
    }
    PyObject *name = PyDict_GetItemWithError(mine, key_thread_name);
    if (name != NULL) {
        Py_INCREF(name);
    }
    else if (PyErr_Occurred()) {
        return NULL;
    }
    else {
        name = PyObject_CallNoArgs(ask);
        if (name == NULL || PyDict_SetItem(mine, key_thread_name, name) < 0) {
            Py_XDECREF(name);
            return NULL;
        }
    }
    Py_XSETREF(last_thread_name, Py_NewRef(name));
    last_thread_id = id;
    return name;
}

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
    int asyncio;            /* an asyncio pool: thread_name is task_or_thread_name, asked every time */
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

/* The usual checkout and check-in run whole between two bytecodes of every other thread: after the
   caller's name (asked of Python once per thread) and the record's tuple (whose allocation may start a
   garbage collection, which may run Python code) are at hand, nothing is called that could run Python
   code or let another thread in, until the record is in the tail. The roll comes after. */

/* checkout(dbapi_connection) -> bool: recorded the usual checkout of an idle connection (False: the Python must). */
static PyObject *
BusyPath_checkout(BusyPath *self, PyObject *dbapi_connection)
{
    PyObject *name = self->asyncio ? PyObject_CallNoArgs(self->thread_name) : thread_name(self->thread_name);
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
    PyObject *in_use = bump(self->counts, 0, 1);
    PyObject *idle = in_use ? bump(self->counts, 1, -1) : NULL;
    if (idle == NULL) {
        Py_DECREF(now);
        goto not_mine;
    }
    PyObject *waiting = PyList_GET_ITEM(self->counts, 2);
    PyTuple_SET_ITEM(record, 0, now);
    PyTuple_SET_ITEM(record, 1, Py_NewRef(str_checkout));
    PyTuple_SET_ITEM(record, 2, Py_NewRef(serial));
    PyTuple_SET_ITEM(record, 3, name);
    PyTuple_SET_ITEM(record, 4, Py_NewRef(in_use));
    PyTuple_SET_ITEM(record, 5, Py_NewRef(idle));
    PyTuple_SET_ITEM(record, 6, Py_NewRef(waiting));
    PyTuple_SET_ITEM(record, 7, extra);
    if (append(self, untracked(record)) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;

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
    PyObject *name = self->asyncio ? PyObject_CallNoArgs(self->thread_name) : thread_name(self->thread_name);
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
    PyObject *in_use = bump(self->counts, 0, -1);
    PyObject *idle = in_use ? bump(self->counts, 1, 1) : NULL;
    if (idle == NULL) {
        Py_DECREF(since);
        Py_DECREF(now);
        goto not_mine;
    }
    PyTuple_SET_ITEM(record, 0, now);
    PyTuple_SET_ITEM(record, 1, Py_NewRef(str_checkin));
    PyTuple_SET_ITEM(record, 2, Py_NewRef(serial));
    PyTuple_SET_ITEM(record, 3, name);
    PyTuple_SET_ITEM(record, 4, Py_NewRef(in_use));
    PyTuple_SET_ITEM(record, 5, Py_NewRef(idle));
    PyTuple_SET_ITEM(record, 6, Py_NewRef(PyList_GET_ITEM(self->counts, 2)));
    PyTuple_SET_ITEM(record, 7, since);
    if (append(self, untracked(record)) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;

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

/* ---- psycopg_pool's ConnectionPool ---------------------------------------------------------

   Four bound methods of one PsycopgBusyPath replace getconn, _get_ready_connection, putconn and
   _add_to_pool on the pool instance (poolviz.pools.psycopg.fast). Each calls psycopg_pool's own
   method, then records the usual case as poolviz.pools.psycopg.hooks.Hooks does inline, and hands
   anything else to the same Python (the Hooks' and Recorder's methods on the pool). */

enum { STATE_NEW = 0, STATE_IDLE = 1, STATE_OUT = 4 };

static PyTypeObject *rlock_type; /* see "the pool's lock" below */

/* One driver connection of the pool: poolviz.pools.psycopg.recorder.Tracked, as a C struct the busy path
   reads and writes directly (Python sees the same attributes, as it does the Python class's slots). */
typedef struct {
    PyObject_HEAD
    PyObject *conn, *serial, *opened, *open_s, *opener, *state, *checked_out, *returned, *held_by;
    PyObject *checkouts, *holder, *origin, *leaked;
} Tracked;

#define TRACKED_FIELDS(DO) \
    DO(conn) DO(serial) DO(opened) DO(open_s) DO(opener) DO(state) DO(checked_out) DO(returned) DO(held_by) \
    DO(checkouts) DO(holder) DO(origin) DO(leaked)

static int
Tracked_traverse(Tracked *self, visitproc visit, void *arg)
{
#define VISIT(field) Py_VISIT(self->field);
    TRACKED_FIELDS(VISIT)
#undef VISIT
    return 0;
}

static int
Tracked_clear(Tracked *self)
{
#define CLEAR(field) Py_CLEAR(self->field);
    TRACKED_FIELDS(CLEAR)
#undef CLEAR
    return 0;
}

static void
Tracked_dealloc(Tracked *self)
{
    PyObject_GC_UnTrack(self);
    Tracked_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *int_zero, *str_empty;

static int
Tracked_init(Tracked *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"conn", "opened", "open_s", "opener", "state", NULL};
    PyObject *conn, *opened, *open_s, *opener, *state = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|O:Tracked", kwlist, &conn, &opened, &open_s, &opener,
                                     &state)) {
        return -1;
    }
    Tracked_clear(self);
    self->conn = Py_NewRef(conn);
    self->serial = Py_NewRef(int_zero); /* NO_CONN */
    self->opened = Py_NewRef(opened);
    self->open_s = Py_NewRef(open_s);
    self->opener = Py_NewRef(opener);
    self->state = state ? Py_NewRef(state) : Py_NewRef(int_zero); /* NEW */
    self->checked_out = Py_NewRef(Py_None);
    self->returned = Py_NewRef(Py_None);
    self->held_by = Py_NewRef(str_empty);
    self->checkouts = Py_NewRef(int_zero);
    self->holder = Py_NewRef(Py_None);
    self->origin = Py_NewRef(str_empty);
    self->leaked = Py_NewRef(Py_False);
    return 0;
}

static PyMemberDef Tracked_members[] = {
#define MEMBER(field, doc) {#field, T_OBJECT_EX, offsetof(Tracked, field), 0, doc},
    MEMBER(conn, "the driver connection (held, so id(conn) is not reused)")
    MEMBER(serial, "poolviz's number for it")
    MEMBER(opened, "perf_counter() when opened")
    MEMBER(open_s, "seconds its connect took")
    MEMBER(opener, "who opened it")
    MEMBER(state, "NEW, IDLE, TAKEN, HANDED or OUT (poolviz.pools.psycopg.recorder)")
    MEMBER(checked_out, "perf_counter() of the checkout, None unless a caller holds it")
    MEMBER(returned, "perf_counter() of the putconn() that returns it")
    MEMBER(held_by, "the name of the thread or task that checked it out")
    MEMBER(checkouts, "how many times it was checked out")
    MEMBER(holder, "with leak_threshold: the holding thread or task")
    MEMBER(origin, "with leak_threshold: where it asked")
    MEMBER(leaked, "whether a leak event is open for it")
#undef MEMBER
    {NULL},
};

static PyTypeObject TrackedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "poolviz.pools._busypath.Tracked",
    .tp_doc = "One driver connection of a psycopg_pool pool (see poolviz.pools.psycopg.recorder.Tracked).",
    .tp_basicsize = sizeof(Tracked),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tracked_init,
    .tp_dealloc = (destructor)Tracked_dealloc,
    .tp_traverse = (traverseproc)Tracked_traverse,
    .tp_clear = (inquiry)Tracked_clear,
    .tp_members = Tracked_members,
};

/* Whether a state (a small int) is `value`. */
static int
state_is(PyObject *state, long value)
{
    return state != NULL && PyLong_CheckExact(state) && PyLong_AsLong(state) == value;
}

/* Replace a Tracked field. */
#define SET_FIELD(info, field, value) do { PyObject *old_ = (info)->field; (info)->field = Py_NewRef(value); Py_XDECREF(old_); } while (0)

typedef struct {
    PyObject_HEAD
    PyObject *pool, *pool_dict;
    PyObject *next_getconn, *next_get_ready, *next_putconn, *next_add_to_pool; /* psycopg_pool's own */
    PyObject *conns;          /* pool._pv_conns: id(conn) -> Tracked */
    PyObject *idle_deque;     /* pool._pool */
    PyObject *waiting_deque;  /* pool._waiting */
    PyObject *waiters;        /* pool._pv_waiters */
    PyObject *tail, *roll, *hold, *listening;
    PyObject *lock, *acquire, *release; /* the pool's lock (also the log's), and its methods */
    PyObject *thread_name, *library, *lines, *reused_payload;
    PyObject *reused;         /* the payload of a reused checkout without a site */
    PyObject *unknown;        /* TransactionStatus.UNKNOWN */
    PyObject *check;          /* None, or called with the kind before each record (poolviz.pools.psycopg.testing) */
    Py_ssize_t chunk;
    int has_check;            /* the pool has a check callback: its checkouts wait for it (the Python's) */
    int plain_rlock;          /* the lock is a _thread.RLock laid out as rlock_layout (see below) */
    int asyncio;              /* an AsyncConnectionPool: its methods are coroutines (see Step), its callers tasks */
    /* What the last lookups in conns and the pool's __dict__ found, while those dicts stay as they were then
       (DICT_VERSION; borrowed: the dicts hold them, and anything removed changes the version). */
    uint64_t conns_version, pool_version;
    PyObject *seen_conn[8];
    Tracked *seen_info[8];
    long nconns;
    int sites;
} PsycopgPath;

#define PSYCOPG_FIELDS(DO) \
    DO(pool) DO(pool_dict) DO(next_getconn) DO(next_get_ready) DO(next_putconn) DO(next_add_to_pool) DO(conns) \
    DO(idle_deque) DO(waiting_deque) DO(waiters) DO(tail) DO(roll) DO(hold) DO(listening) DO(lock) DO(acquire) \
    DO(release) DO(thread_name) DO(library) DO(lines) DO(reused_payload) DO(reused) DO(unknown) DO(check)

static PyObject *str_state, *str_checked_out, *str_returned, *str_held_by, *str_checkouts, *str_serial;
static PyObject *str_leaked, *str_nconns, *str_pgconn, *str_transaction_status;
static PyObject *str_pv_take, *str_pv_checkout, *str_pv_getconn_failed, *str_pv_getconn_late;
static PyObject *str_pv_returning, *str_pv_landed, *str_pv_deliver, *str_pv_got_ready, *str_pv_landed_locked;
static PyObject *int_out, *int_idle, *float_zero;

static int
PsycopgPath_traverse(PsycopgPath *self, visitproc visit, void *arg)
{
#define VISIT(field) Py_VISIT(self->field);
    PSYCOPG_FIELDS(VISIT)
#undef VISIT
    return 0;
}

static int
PsycopgPath_clear(PsycopgPath *self)
{
#define CLEAR(field) Py_CLEAR(self->field);
    PSYCOPG_FIELDS(CLEAR)
#undef CLEAR
    return 0;
}

static void
PsycopgPath_dealloc(PsycopgPath *self)
{
    PyObject_GC_UnTrack(self);
    PsycopgPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
PsycopgPath_init(PsycopgPath *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pool", "next_getconn", "next_get_ready", "next_putconn", "next_add_to_pool",
                             "conns", "idle_deque", "waiting_deque", "waiters", "tail", "roll", "hold",
                             "listening", "lock", "thread_name", "library", "lines", "reused_payload",
                             "reused", "unknown", "chunk", "has_check", "sites", "asyncio", NULL};
    PyObject *pool, *next_getconn, *next_get_ready, *next_putconn, *next_add_to_pool, *conns, *idle_deque;
    PyObject *waiting_deque, *waiters, *tail, *roll, *hold, *listening, *lock, *thread_name, *library, *lines;
    PyObject *reused_payload, *reused, *unknown;
    Py_ssize_t chunk;
    int has_check, sites, asyncio = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO!OOO!O!OOO!OOO!O!OOOnpp|p", kwlist, &pool, &next_getconn,
                                     &next_get_ready, &next_putconn, &next_add_to_pool, &PyDict_Type, &conns,
                                     &idle_deque, &waiting_deque, &PyDict_Type, &waiters, &PyList_Type, &tail,
                                     &roll, &hold, &PyList_Type, &listening, &lock, &thread_name, &PyDict_Type,
                                     &library, &PyDict_Type, &lines, &reused_payload, &reused, &unknown, &chunk,
                                     &has_check, &sites, &asyncio)) {
        return -1;
    }
    PyObject *acquire = PyObject_GetAttrString(lock, "acquire");
    PyObject *release = acquire ? PyObject_GetAttrString(lock, "release") : NULL;
    if (release == NULL) {
        Py_XDECREF(acquire);
        return -1;
    }
    PyObject *pool_dict = PyObject_GenericGetDict(pool, NULL);
    if (pool_dict == NULL) {
        Py_DECREF(acquire);
        Py_DECREF(release);
        return -1;
    }
    PsycopgPath_clear(self);
    self->pool_dict = pool_dict;
    self->lock = Py_NewRef(lock);
    self->plain_rlock = rlock_type != NULL && Py_IS_TYPE(lock, rlock_type);
    self->acquire = acquire;
    self->release = release;
    self->check = Py_NewRef(Py_None);
#define KEEP(field) self->field = Py_NewRef(field);
    KEEP(pool) KEEP(next_getconn) KEEP(next_get_ready) KEEP(next_putconn) KEEP(next_add_to_pool) KEEP(conns)
    KEEP(idle_deque) KEEP(waiting_deque) KEEP(waiters) KEEP(tail) KEEP(roll) KEEP(hold) KEEP(listening)
    KEEP(thread_name) KEEP(library) KEEP(lines) KEEP(reused_payload) KEEP(reused) KEEP(unknown)
#undef KEEP
    self->chunk = chunk;
    self->has_check = has_check;
    self->sites = sites;
    self->asyncio = asyncio;
    return 0;
}

/* Whether anyone listens to the log: -1 on error. */
static int
listened(PsycopgPath *self)
{
    return PyList_GET_SIZE(self->listening) == 1 ? PyList_GET_ITEM(self->listening, 0) != Py_False : 1;
}

/* pool.<method>(*args): a new reference, or NULL. */
static PyObject *
call_pool(PsycopgPath *self, PyObject *method, PyObject *a, PyObject *b)
{
    PyObject *args[3] = {self->pool, a, b};
    return PyObject_VectorcallMethod(method, args, 1 + (a != NULL) + (b != NULL), NULL);
}

/* Hand this caller's events to the listeners, if any (never holding the pool lock: callers see to it). */
static int
deliver(PsycopgPath *self)
{
    int someone = listened(self);
    if (someone <= 0) {
        return someone;
    }
    PyObject *done = call_pool(self, str_pv_deliver, NULL, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

#if PY_VERSION_HEX < 0x030C0000
/* A dict's version: it changes whenever the dict does (3.11's field; deprecated in 3.12, so not used there). */
#define DICT_VERSION(d) (((PyDictObject *)(d))->ma_version_tag)
#endif

/* The Tracked record of conn (borrowed), or NULL with no error set when conn is not tracked (or tracked otherwise). */
static Tracked *
tracked(PsycopgPath *self, PyObject *conn)
{
#ifdef DICT_VERSION
    size_t slot = (size_t)((((uint64_t)(uintptr_t)conn >> 4) * 0x9E3779B97F4A7C15ull) >> 61);
    if (DICT_VERSION(self->conns) != self->conns_version) {
        memset(self->seen_conn, 0, sizeof(self->seen_conn));
        self->conns_version = DICT_VERSION(self->conns);
    }
    else if (self->seen_conn[slot] == conn) {
        return self->seen_info[slot];
    }
#endif
    PyObject *key = PyLong_FromVoidPtr(conn);
    if (key == NULL) {
        return NULL;
    }
    PyObject *info = PyDict_GetItemWithError(self->conns, key);
    Py_DECREF(key);
    if (info == NULL || !Py_IS_TYPE(info, &TrackedType)) {
        return NULL;
    }
#ifdef DICT_VERSION
    self->seen_conn[slot] = conn;
    self->seen_info[slot] = (Tracked *)info;
#endif
    return (Tracked *)info;
}

/* pool._nconns: 0, or -1 on error. */
static int
pool_size(PsycopgPath *self, long *size)
{
#ifdef DICT_VERSION
    if (DICT_VERSION(self->pool_dict) == self->pool_version) {
        *size = self->nconns;
        return 0;
    }
#endif
    PyObject *nconns = PyDict_GetItemWithError(self->pool_dict, str_nconns); /* borrowed */
    if (nconns == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_AttributeError, "the pool has no _nconns");
        }
        return -1;
    }
    *size = PyLong_AsLong(nconns);
    if (*size == -1 && PyErr_Occurred()) {
        return -1;
    }
#ifdef DICT_VERSION
    self->nconns = *size;
    self->pool_version = DICT_VERSION(self->pool_dict);
#endif
    return 0;
}

/* Append a record (stealing it), holding the pool lock: the testing check first, the roll and the listeners' copy after. */
static int
psycopg_append(PsycopgPath *self, PyObject *record, PyObject *kind)
{
    if (self->check != Py_None) {
        PyObject *checked = PyObject_CallOneArg(self->check, kind);
        if (checked == NULL) {
            Py_DECREF(record);
            return -1;
        }
        Py_DECREF(checked);
    }
    if (PyList_Append(self->tail, record) < 0) {
        Py_DECREF(record);
        return -1;
    }
    int failed = 0;
    if (PyList_GET_SIZE(self->tail) >= self->chunk) {
        PyObject *rolled = PyObject_CallNoArgs(self->roll);
        failed = rolled == NULL;
        Py_XDECREF(rolled);
    }
    if (!failed) {
        int someone = listened(self);
        if (someone > 0) {
            PyObject *held = PyObject_CallOneArg(self->hold, record);
            failed = held == NULL;
            Py_XDECREF(held);
        }
        else {
            failed = someone < 0;
        }
    }
    Py_DECREF(record);
    return failed ? -1 : 0;
}

/* The record (now, kind, serial, thread, in_use, idle, waiting, extra) with the counts as psycopg_pool's
   get_stats() reads them: a new reference, or NULL. */
static PyObject *
psycopg_record(PsycopgPath *self, PyObject *now, PyObject *kind, PyObject *serial, PyObject *thread, PyObject *extra)
{
    Py_ssize_t idle = PyObject_Length(self->idle_deque);
    Py_ssize_t waiting = idle < 0 ? -1 : PyObject_Length(self->waiting_deque);
    if (waiting < 0) {
        return NULL;
    }
    long size;
    if (pool_size(self, &size) < 0) {
        return NULL;
    }
    PyObject *record = PyTuple_New(8);
    PyObject *in_use = PyLong_FromLong(size - (long)idle);
    PyObject *n_idle = PyLong_FromSsize_t(idle);
    PyObject *n_waiting = PyLong_FromSsize_t(waiting);
    if (!record || !in_use || !n_idle || !n_waiting) {
        Py_XDECREF(record);
        Py_XDECREF(in_use);
        Py_XDECREF(n_idle);
        Py_XDECREF(n_waiting);
        return NULL;
    }
    PyTuple_SET_ITEM(record, 0, Py_NewRef(now));
    PyTuple_SET_ITEM(record, 1, Py_NewRef(kind));
    PyTuple_SET_ITEM(record, 2, Py_NewRef(serial));
    PyTuple_SET_ITEM(record, 3, Py_NewRef(thread));
    PyTuple_SET_ITEM(record, 4, in_use);
    PyTuple_SET_ITEM(record, 5, n_idle);
    PyTuple_SET_ITEM(record, 6, n_waiting);
    PyTuple_SET_ITEM(record, 7, Py_NewRef(extra));
    return untracked(record);
}

/* Who is asking: this thread's name, or in an asyncio pool the task's (a new reference, or NULL). */
static PyObject *
caller_name(PsycopgPath *self)
{
    return self->asyncio ? PyObject_CallNoArgs(self->thread_name) : thread_name(self->thread_name);
}

/* getconn() raised (the exception is set, and still is on return): recorded by the Python. */
static void
getconn_failed(PsycopgPath *self, double started)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    PyObject *at = PyFloat_FromDouble(started);
    PyObject *done = at ? call_pool(self, str_pv_getconn_failed, at, value) : NULL;
    Py_XDECREF(at);
    if (done == NULL) { /* the recording failed: that error goes up */
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return;
    }
    Py_DECREF(done);
    PyErr_Restore(type, value, traceback);
}

/* getconn() returned conn (stolen): a checkout not recorded when taken is recorded now. conn, or NULL. */
static PyObject *
getconn_done(PsycopgPath *self, PyObject *conn, double started)
{
    Tracked *info = tracked(self, conn);
    int failed = PyErr_Occurred() != NULL;
    if (!failed && (info == NULL || !state_is(info->state, STATE_OUT))) {
        /* not recorded when taken: it came from the queue, or passed the check callback */
        PyObject *at = PyFloat_FromDouble(started);
        PyObject *done = at ? call_pool(self, str_pv_getconn_late, conn, at) : NULL;
        Py_XDECREF(at);
        Py_XDECREF(done);
        failed = done == NULL;
    }
    if (failed || deliver(self) < 0) {
        Py_DECREF(conn);
        return NULL;
    }
    return conn;
}

/* psycopg_pool's getconn(self, *args, **kwargs), as called: its result (a coroutine in an asyncio pool), or NULL. */
static PyObject *
call_getconn(PsycopgPath *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    if (total > 1) {
        PyErr_SetString(PyExc_TypeError, "getconn() takes at most 1 argument (timeout)");
        return NULL;
    }
    PyObject *call_args[2] = {self->pool, total ? args[0] : NULL};
    return PyObject_Vectorcall(self->next_getconn, call_args, 1 + nargs, kwnames);
}

/* getconn(timeout=None): psycopg_pool's, the checkout recorded by _get_ready_connection below in the usual case. */
static PyObject *
Psycopg_getconn(PsycopgPath *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    double started = perf_counter();
    PyObject *conn = call_getconn(self, args, nargs, kwnames);
    if (conn == NULL) {
        getconn_failed(self, started);
        return NULL;
    }
    return getconn_done(self, conn, started);
}

/* _get_ready_connection() returned conn (stolen, not None): its checkout recorded. conn, or NULL. Holding the
   pool lock (threads), or between two awaits (asyncio). */
static PyObject *
ready_done(PsycopgPath *self, PyObject *conn)
{
    Tracked *info = NULL;
    if (!self->has_check && PyDict_GET_SIZE(self->waiters) == 0 && !(self->asyncio && listened(self))) {
        info = tracked(self, conn);
        if (info != NULL && state_is(info->state, STATE_NEW)) {
            info = NULL; /* opened for this caller: its connect first */
        }
    }
    if (info == NULL) { /* a check to pass first, someone queued, a new connection: the Python's */
        PyObject *method = self->asyncio ? str_pv_got_ready : self->has_check ? str_pv_take : str_pv_checkout;
        PyObject *done = PyErr_Occurred() ? NULL : call_pool(self, method, conn, NULL);
        if (done == NULL) {
            Py_DECREF(conn);
            return NULL;
        }
        Py_DECREF(done);
        return conn;
    }
    /* The usual checkout: an idle connection, nobody queued, no leak watch (else no PsycopgPath). */
    long count = PyLong_AsLong(info->checkouts);
    if (count == -1 && PyErr_Occurred()) {
        Py_DECREF(conn);
        return NULL;
    }
    PyObject *site = self->sites ? walk(0, self->library, self->lines) : Py_NewRef(self->reused);
    if (site == Py_None) { /* not cached yet: the Python walk caches it */
        Py_DECREF(site);
        PyObject *one = PyLong_FromLong(1);
        site = one ? PyObject_CallOneArg(self->reused_payload, one) : NULL;
        Py_XDECREF(one);
    }
    PyObject *extra = NULL;
    if (site != NULL && (!PyTuple_Check(site) || PyTuple_GET_SIZE(site) != 5)) {
        PyErr_SetString(PyExc_TypeError, "a checkout payload must be a 5-tuple");
    }
    else if (site != NULL && count >= 1) {
        extra = Py_NewRef(site); /* a reused checkout: the cached payload as it is */
    }
    else if (site != NULL) { /* its first checkout: not reused */
        PyObject *where = PyTuple_GET_ITEM(site, 4);
        extra = PyObject_IsTrue(where) ? untracked(PyTuple_Pack(5, float_zero, float_zero, Py_False, str_empty, where))
                                        : Py_NewRef(Py_None);
    }
    Py_XDECREF(site);
    PyObject *name = extra ? caller_name(self) : NULL;
    PyObject *now = name ? PyFloat_FromDouble(perf_counter()) : NULL;
    PyObject *more = now ? PyLong_FromLong(count + 1) : NULL;
    PyObject *record = more ? psycopg_record(self, now, str_checkout, info->serial, name, extra) : NULL;
    if (record != NULL) {
        SET_FIELD(info, state, int_out);
        SET_FIELD(info, checked_out, now);
        SET_FIELD(info, returned, Py_None);
        SET_FIELD(info, held_by, name);
        SET_FIELD(info, checkouts, more);
    }
    int failed = record == NULL || psycopg_append(self, record, str_checkout) < 0;
    Py_XDECREF(more);
    Py_XDECREF(now);
    Py_XDECREF(name);
    Py_XDECREF(extra);
    if (failed) {
        Py_DECREF(conn);
        return NULL;
    }
    return conn;
}

/* _get_ready_connection(timeout), called holding the pool lock. */
static PyObject *
Psycopg_get_ready(PsycopgPath *self, PyObject *timeout)
{
    PyObject *call_args[2] = {self->pool, timeout};
    PyObject *conn = PyObject_Vectorcall(self->next_get_ready, call_args, 2, NULL);
    if (conn == NULL || conn == Py_None) {
        return conn;
    }
    return ready_done(self, conn);
}

/* putconn(conn) is called: the holder lets go now. 0, or -1 on error. */
static int
putconn_before(PsycopgPath *self, PyObject *conn)
{
    Tracked *info = tracked(self, conn);
    int usual = 0;
    if (info != NULL && state_is(info->state, STATE_OUT)) {
        PyObject *pgconn = PyObject_GetAttr(conn, str_pgconn);
        PyObject *status = pgconn ? PyObject_GetAttr(pgconn, str_transaction_status) : NULL;
        Py_XDECREF(pgconn);
        usual = status ? PyObject_RichCompareBool(status, self->unknown, Py_NE) : -1;
        Py_XDECREF(status);
    }
    else if (PyErr_Occurred()) {
        usual = -1;
    }
    if (usual > 0) { /* only its holder touches its record while it is out */
        PyObject *now = PyFloat_FromDouble(perf_counter());
        if (now == NULL) {
            return -1;
        }
        SET_FIELD(info, returned, now);
        Py_DECREF(now);
        return 0;
    }
    if (usual < 0) {
        return -1;
    }
    PyObject *done = call_pool(self, str_pv_returning, conn, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* Deliver to the listeners whatever happened (an exception set stays set, as in a finally block): `done`, or NULL. */
static PyObject *
deliver_anyway(PsycopgPath *self, PyObject *done)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    int delivered = deliver(self);
    if (type != NULL) {
        if (delivered < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, traceback);
        Py_XDECREF(done);
        return NULL;
    }
    if (delivered < 0) {
        Py_XDECREF(done);
        return NULL;
    }
    return done;
}

/* putconn(conn): the holder lets go now; psycopg_pool's putconn, which lands it through _add_to_pool below. */
static PyObject *
Psycopg_putconn(PsycopgPath *self, PyObject *conn)
{
    if (putconn_before(self, conn) < 0) {
        return NULL;
    }
    PyObject *call_args[2] = {self->pool, conn};
    return deliver_anyway(self, PyObject_Vectorcall(self->next_putconn, call_args, 2, NULL));
}

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
    double now = perf_counter();
    double until = PyFloat_Check(info->returned) ? PyFloat_AS_DOUBLE(info->returned) : now;
    PyObject *duration = PyFloat_FromDouble(until - PyFloat_AS_DOUBLE(info->checked_out));
    PyObject *held = duration ? PyTuple_Pack(5, float_zero, duration, Py_False, str_empty, str_empty) : NULL;
    untracked(held);
    PyObject *stamp = held ? PyFloat_FromDouble(now) : NULL;
    Py_XDECREF(duration);
    PyObject *record = stamp ? psycopg_record(self, stamp, str_checkin, info->serial, info->held_by, held) : NULL;
    Py_XDECREF(held);
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

/* ---- AsyncConnectionPool: each method a Step -------------------------------------------------

   An asyncio pool's getconn, _get_ready_connection, putconn and _add_to_pool are coroutines. Each
   method here calls psycopg_pool's (making its coroutine) and returns a Step, which runs that
   coroutine as `await` runs it (send, throw, close) and, in the same turn of the event loop as it
   returns or raises, records what the Python hooks (AsyncHooks) would. A Step is a coroutine as
   collections.abc.Coroutine has it, so asyncio.create_task() and wait_for() take it as they take
   the coroutine it runs. */

enum { STEP_GETCONN, STEP_GET_READY, STEP_PUTCONN, STEP_ADD };

typedef struct {
    PyObject_HEAD
    PsycopgPath *path;
    PyObject *inner; /* psycopg_pool's coroutine, NULL once it has finished */
    PyObject *conn;  /* putconn's and _add_to_pool's argument */
    double started;  /* getconn's start */
    int kind;
} Step;

static PyTypeObject StepType;

static PyObject *
step_new(PsycopgPath *path, PyObject *inner, int kind, PyObject *conn, double started)
{
    if (inner == NULL) {
        return NULL;
    }
    Step *step = PyObject_GC_New(Step, &StepType);
    if (step == NULL) {
        Py_DECREF(inner);
        return NULL;
    }
    step->path = (PsycopgPath *)Py_NewRef(path);
    step->inner = inner;
    step->conn = Py_XNewRef(conn);
    step->started = started;
    step->kind = kind;
    PyObject_GC_Track(step);
    return (PyObject *)step;
}

static int
Step_traverse(Step *self, visitproc visit, void *arg)
{
    Py_VISIT(self->path);
    Py_VISIT(self->inner);
    Py_VISIT(self->conn);
    return 0;
}

static int
Step_clear(Step *self)
{
    Py_CLEAR(self->path);
    Py_CLEAR(self->inner);
    Py_CLEAR(self->conn);
    return 0;
}

static void
Step_dealloc(Step *self)
{
    PyObject_GC_UnTrack(self);
    Step_clear(self);
    PyObject_GC_Del(self);
}

/* The coroutine returned `value` (stolen): what the Step returns (a new reference), or NULL. */
static PyObject *
step_returned(Step *self, PyObject *value)
{
    PsycopgPath *path = self->path;
    switch (self->kind) {
    case STEP_GETCONN:
        return getconn_done(path, value, self->started);
    case STEP_GET_READY:
        return value == Py_None ? value : ready_done(path, value);
    case STEP_ADD:
        if (landed(path, self->conn) < 0 || deliver(path) < 0) {
            Py_DECREF(value);
            return NULL;
        }
        return value;
    default: /* STEP_PUTCONN */
        return deliver_anyway(path, value);
    }
}

/* The coroutine raised (the exception is set, and stays set, or another takes its place). */
static void
step_raised(Step *self)
{
    if (self->kind == STEP_GETCONN) {
        getconn_failed(self->path, self->started);
    }
    else if (self->kind == STEP_PUTCONN) {
        (void)deliver_anyway(self->path, NULL);
    }
}

/* How the coroutine's step ended: PYGEN_NEXT (it awaits: *result), PYGEN_RETURN (*result) or PYGEN_ERROR. */
static PySendResult
step_ended(Step *self, PySendResult status, PyObject *value, PyObject **result)
{
    if (status == PYGEN_NEXT) {
        *result = value;
        return PYGEN_NEXT;
    }
    Py_CLEAR(self->inner);
    if (status == PYGEN_RETURN) {
        *result = step_returned(self, value);
        return *result != NULL ? PYGEN_RETURN : PYGEN_ERROR;
    }
    step_raised(self);
    *result = NULL;
    return PYGEN_ERROR;
}

static PySendResult
Step_am_send(Step *self, PyObject *arg, PyObject **result)
{
    if (self->inner == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        *result = NULL;
        return PYGEN_ERROR;
    }
    PyObject *value = NULL;
    PySendResult status = PyIter_Send(self->inner, arg, &value);
    return step_ended(self, status, value, result);
}

/* The Python face of a step's end: the value it awaits, or NULL with StopIteration(return value) or the error set. */
static PyObject *
step_as_python(PySendResult status, PyObject *result)
{
    if (status == PYGEN_NEXT) {
        return result;
    }
    if (status == PYGEN_RETURN) {
        if (result == Py_None) {
            PyErr_SetNone(PyExc_StopIteration);
        }
        else {
            PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
            if (stop != NULL) {
                PyErr_SetObject(PyExc_StopIteration, stop);
                Py_DECREF(stop);
            }
        }
        Py_DECREF(result);
    }
    return NULL;
}

static PyObject *
Step_send(Step *self, PyObject *arg)
{
    PyObject *result = NULL;
    PySendResult status = Step_am_send(self, arg, &result);
    return step_as_python(status, result);
}

static PyObject *
Step_iternext(Step *self)
{
    PyObject *result = NULL;
    PySendResult status = Step_am_send(self, Py_None, &result);
    if (status == PYGEN_RETURN) { /* the iterator protocol: StopIteration(value) */
        return step_as_python(status, result);
    }
    return status == PYGEN_NEXT ? result : NULL;
}

static PyObject *
Step_throw(Step *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->inner == NULL) { /* finished: raise what was thrown in, as a finished coroutine does */
        if (nargs >= 1 && PyExceptionInstance_Check(args[0])) {
            PyErr_SetObject((PyObject *)Py_TYPE(args[0]), args[0]);
        }
        else if (nargs >= 1) {
            PyErr_SetObject(args[0], nargs >= 2 ? args[1] : NULL);
        }
        return NULL;
    }
    PyObject *method = PyObject_GetAttrString(self->inner, "throw");
    if (method == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_Vectorcall(method, args, nargs, NULL);
    Py_DECREF(method);
    PyObject *result = NULL;
    PySendResult status;
    if (value != NULL) {
        status = step_ended(self, PYGEN_NEXT, value, &result);
    }
    else if (PyErr_ExceptionMatches(PyExc_StopIteration)) { /* the coroutine returned */
        PyObject *type, *exc, *traceback;
        PyErr_Fetch(&type, &exc, &traceback);
        PyErr_NormalizeException(&type, &exc, &traceback);
        PyObject *returned = exc ? PyObject_GetAttrString(exc, "value") : Py_NewRef(Py_None);
        Py_XDECREF(type);
        Py_XDECREF(exc);
        Py_XDECREF(traceback);
        if (returned == NULL) {
            return NULL;
        }
        status = step_ended(self, PYGEN_RETURN, returned, &result);
    }
    else {
        status = step_ended(self, PYGEN_ERROR, NULL, &result);
    }
    return step_as_python(status, result);
}

static PyObject *
Step_close(Step *self, PyObject *unused)
{
    if (self->inner == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *inner = self->inner;
    self->inner = NULL;
    PyObject *done = PyObject_CallMethod(inner, "close", NULL);
    Py_DECREF(inner);
    return done;
}

static PyObject *
Step_await(Step *self)
{
    return Py_NewRef(self);
}

static PyMethodDef Step_methods[] = {
    {"send", (PyCFunction)Step_send, METH_O, "Resume the coroutine with a value."},
    {"throw", (PyCFunction)(void (*)(void))Step_throw, METH_FASTCALL, "Raise an exception in the coroutine."},
    {"close", (PyCFunction)Step_close, METH_NOARGS, "Close the coroutine."},
    {NULL},
};

static PyAsyncMethods Step_async = {
    .am_await = (unaryfunc)Step_await,
    .am_send = (sendfunc)Step_am_send,
};

static PyTypeObject StepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "poolviz.pools._busypath.Step",
    .tp_doc = "psycopg_pool's coroutine, run as await runs it, and recorded as it ends.",
    .tp_basicsize = sizeof(Step),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Step_dealloc,
    .tp_traverse = (traverseproc)Step_traverse,
    .tp_clear = (inquiry)Step_clear,
    .tp_as_async = &Step_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Step_iternext,
    .tp_methods = Step_methods,
};

static PyObject *
Psycopg_agetconn(PsycopgPath *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    double started = perf_counter();
    return step_new(self, call_getconn(self, args, nargs, kwnames), STEP_GETCONN, NULL, started);
}

static PyObject *
Psycopg_aget_ready(PsycopgPath *self, PyObject *timeout)
{
    PyObject *call_args[2] = {self->pool, timeout};
    return step_new(self, PyObject_Vectorcall(self->next_get_ready, call_args, 2, NULL), STEP_GET_READY, NULL, 0.0);
}

static PyObject *
Psycopg_aputconn(PsycopgPath *self, PyObject *conn)
{
    if (putconn_before(self, conn) < 0) {
        return NULL;
    }
    PyObject *call_args[2] = {self->pool, conn};
    return step_new(self, PyObject_Vectorcall(self->next_putconn, call_args, 2, NULL), STEP_PUTCONN, conn, 0.0);
}

static PyObject *
Psycopg_aadd_to_pool(PsycopgPath *self, PyObject *conn)
{
    PyObject *call_args[2] = {self->pool, conn};
    return step_new(self, PyObject_Vectorcall(self->next_add_to_pool, call_args, 2, NULL), STEP_ADD, conn, 0.0);
}

static PyMethodDef PsycopgPath_methods[] = {
    {"getconn", (PyCFunction)(void (*)(void))Psycopg_getconn, METH_FASTCALL | METH_KEYWORDS,
     "psycopg_pool's getconn(timeout=None), recorded."},
    {"_get_ready_connection", (PyCFunction)Psycopg_get_ready, METH_O,
     "psycopg_pool's _get_ready_connection(timeout), recorded (called holding the pool lock)."},
    {"putconn", (PyCFunction)Psycopg_putconn, METH_O, "psycopg_pool's putconn(conn), recorded."},
    {"_add_to_pool", (PyCFunction)Psycopg_add_to_pool, METH_O, "psycopg_pool's _add_to_pool(conn), recorded."},
    {"agetconn", (PyCFunction)(void (*)(void))Psycopg_agetconn, METH_FASTCALL | METH_KEYWORDS,
     "An asyncio pool's getconn(timeout=None), recorded: a Step to await."},
    {"a_get_ready_connection", (PyCFunction)Psycopg_aget_ready, METH_O,
     "An asyncio pool's _get_ready_connection(timeout), recorded: a Step to await."},
    {"aputconn", (PyCFunction)Psycopg_aputconn, METH_O, "An asyncio pool's putconn(conn), recorded: a Step to await."},
    {"a_add_to_pool", (PyCFunction)Psycopg_aadd_to_pool, METH_O,
     "An asyncio pool's _add_to_pool(conn), recorded: a Step to await."},
    {NULL},
};

static PyMemberDef PsycopgPath_members[] = {
    {"check", T_OBJECT, offsetof(PsycopgPath, check), 0,
     "None, or a callable given each record's kind before it is appended (poolviz.pools.psycopg.testing)."},
    {NULL},
};

static PyTypeObject PsycopgPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "poolviz.pools._busypath.PsycopgBusyPath",
    .tp_doc = "A psycopg_pool ConnectionPool's usual checkout and check-in, recorded into its event log.",
    .tp_basicsize = sizeof(PsycopgPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PsycopgPath_init,
    .tp_dealloc = (destructor)PsycopgPath_dealloc,
    .tp_traverse = (traverseproc)PsycopgPath_traverse,
    .tp_clear = (inquiry)PsycopgPath_clear,
    .tp_methods = PsycopgPath_methods,
    .tp_members = PsycopgPath_members,
};

static PyMethodDef module_methods[] = {
    {"payload_at", (PyCFunction)(void (*)(void))payload_at, METH_FASTCALL,
     "payload_at(depth, library, lines): the cached site payload from sys._getframe(depth) out, or None."},
    {NULL},
};

static struct PyModuleDef busypath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "poolviz.pools._busypath",
    .m_doc = "The compiled half of poolviz's busy path (optional; see poolviz.pools.busypath).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__busypath(void)
{
    str_checkout = PyUnicode_InternFromString("checkout");
    str_checkin = PyUnicode_InternFromString("checkin");
    key_thread_name = PyUnicode_InternFromString("poolviz.thread_name");
    if (!str_checkout || !str_checkin || !key_thread_name || PyType_Ready(&BusyPathType) < 0) {
        return NULL;
    }
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL;
    INTERN(str_state, "state") INTERN(str_checked_out, "checked_out") INTERN(str_returned, "returned")
    INTERN(str_held_by, "held_by") INTERN(str_checkouts, "checkouts") INTERN(str_serial, "serial")
    INTERN(str_leaked, "leaked") INTERN(str_nconns, "_nconns") INTERN(str_pgconn, "pgconn")
    INTERN(str_transaction_status, "transaction_status") INTERN(str_pv_take, "_pv_take")
    INTERN(str_pv_checkout, "_pv_checkout") INTERN(str_pv_getconn_failed, "_pv_getconn_failed")
    INTERN(str_pv_getconn_late, "_pv_getconn_late") INTERN(str_pv_returning, "_pv_returning")
    INTERN(str_pv_landed, "_pv_landed") INTERN(str_pv_deliver, "_pv_deliver")
    INTERN(str_pv_got_ready, "_pv_got_ready") INTERN(str_pv_landed_locked, "_pv_landed_locked")
#undef INTERN
    int_out = PyLong_FromLong(STATE_OUT);
    int_idle = PyLong_FromLong(STATE_IDLE);
    int_zero = PyLong_FromLong(0);
    float_zero = PyFloat_FromDouble(0.0);
    str_empty = PyUnicode_FromString("");
    if (!int_out || !int_idle || !int_zero || !float_zero || !str_empty || PyType_Ready(&PsycopgPathType) < 0
        || PyType_Ready(&StepType) < 0
        || PyType_Ready(&TrackedType) < 0) {
        return NULL;
    }
    probe_rlock();
    PyObject *module = PyModule_Create(&busypath_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&BusyPathType);
    if (PyModule_AddObject(module, "SQLAlchemyBusyPath", (PyObject *)&BusyPathType) < 0) {
        Py_DECREF(&BusyPathType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "RLOCK_LAYOUT_KNOWN", rlock_type != NULL) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&TrackedType);
    if (PyModule_AddObject(module, "Tracked", (PyObject *)&TrackedType) < 0) {
        Py_DECREF(&TrackedType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&PsycopgPathType);
    if (PyModule_AddObject(module, "PsycopgBusyPath", (PyObject *)&PsycopgPathType) < 0) {
        Py_DECREF(&PsycopgPathType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
