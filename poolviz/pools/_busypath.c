/* poolviz.pools._busypath: the compiled half of the busy path (a checkout and its checkin).

   Optional. Built when a C compiler is at hand (setup.py), used unless
   POOLVIZ_PURE_PYTHON is set (poolviz/pools/busypath.py). Every function
   here does what a few lines of Python next to its caller do, and answers
   "not mine" (None or False) for anything but the usual case, which the
   Python then handles as it always did. It never calls back into Python
   code, so each call runs whole under the GIL, between two bytecodes of
   every other thread.

   payload_at(depth, library, lines)
       sites.reused_payload's walk: the cached payload of the first
       application frame from sys._getframe(depth) outwards (as seen from
       the Python function calling this), or None when the walk meets a
       code object or an instruction offset it has not cached yet, or runs
       off this greenlet's stack.

   SQLAlchemyBusyPath(...)
       A SQLAlchemy pool's usual checkout and checkin, recorded as
       poolviz.pools.sqlalchemy.observer's busy_path does in Python.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
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

/* The cached payload at `code`, instruction offset `lasti` (in bytes, as f_lasti): a new reference;
   Py_None when not cached, or when `code` is library code (*library set); NULL on error. */
static PyObject *
cached_payload(PyObject *code, int lasti, PyObject *library, PyObject *lines, int *is_library)
{
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
    Py_INCREF(found);
    return found;
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

/* ---- the caller's name ------------------------------------------------------------------ */

static PyObject *str_checkout, *str_checkin, *str_listeners, *key_thread_name;

/* This thread's name, kept in the thread state's own dict (gone with the thread), asked of `ask` (a Python
   callable: poolviz.pools.callers.thread_name) once per thread. A new reference, or NULL on error. */
static PyObject *
thread_name(PyObject *ask)
{
    PyObject *mine = PyThreadState_GetDict(); /* borrowed */
    if (mine == NULL) {
        return PyObject_CallNoArgs(ask);
    }
    PyObject *name = PyDict_GetItemWithError(mine, key_thread_name);
    if (name != NULL) {
        Py_INCREF(name);
        return name;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    name = PyObject_CallNoArgs(ask);
    if (name != NULL && PyDict_SetItem(mine, key_thread_name, name) < 0) {
        Py_CLEAR(name);
    }
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
    PyObject *listening;    /* the log's __dict__: "_listeners" truthy while anyone listens */
    PyObject *thread_name;  /* poolviz.pools.callers.thread_name */
    PyObject *library;      /* poolviz.pools.sites' caches */
    PyObject *lines;
    PyObject *reused;       /* the payload of a reused checkout without a site */
    PyObject *roll;         /* rolls the log's tail, taking the section, once it holds `chunk` records */
    Py_ssize_t chunk;
    int depth;              /* where the site walk starts, from the wrapper's frame */
    int sites;
} BusyPath;

#define BUSYPATH_FIELDS(DO) \
    DO(tail) DO(serial_of) DO(held_since) DO(fresh) DO(waited) DO(counts) DO(busy) DO(listening) \
    DO(thread_name) DO(library) DO(lines) DO(reused) DO(roll)

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
                             "listening", "thread_name", "library", "lines", "reused", "roll", "chunk",
                             "depth", "sites", NULL};
    PyObject *tail, *serial_of, *held_since, *fresh, *waited, *counts, *busy, *listening, *thread_name;
    PyObject *library, *lines, *reused, *roll;
    Py_ssize_t chunk;
    int depth, sites;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!O!O!O!O!OO!O!OOnip", kwlist,
                                     &PyList_Type, &tail, &PyDict_Type, &serial_of, &PyDict_Type, &held_since,
                                     &PySet_Type, &fresh, &PyList_Type, &waited, &PyList_Type, &counts,
                                     &PyList_Type, &busy, &PyDict_Type, &listening, &thread_name,
                                     &PyDict_Type, &library, &PyDict_Type, &lines, &reused, &roll, &chunk,
                                     &depth, &sites)) {
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
    PyObject *listeners = PyDict_GetItemWithError(self->listening, str_listeners); /* borrowed */
    return listeners != NULL && PyObject_IsTrue(listeners) == 0;
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
    PyObject *name = thread_name(self->thread_name);
    if (name == NULL) {
        return NULL;
    }
    PyObject *record = PyTuple_New(8);
    if (record == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    PyObject *serial = NULL, *extra = NULL;
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
    extra = self->sites ? walk(self->depth, self->library, self->lines) : Py_NewRef(self->reused);
    if (extra == NULL || extra == Py_None) {
        goto not_mine; /* a site the Python has not cached yet */
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
    if (append(self, record) < 0) {
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
    PyObject *name = thread_name(self->thread_name);
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
    if (append(self, record) < 0) {
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
    str_listeners = PyUnicode_InternFromString("_listeners");
    key_thread_name = PyUnicode_InternFromString("poolviz.thread_name");
    if (!str_checkout || !str_checkin || !key_thread_name || !str_listeners || PyType_Ready(&BusyPathType) < 0) {
        return NULL;
    }
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
    return module;
}
