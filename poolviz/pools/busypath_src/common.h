/* poolviz.pools._busypath, part of: The clock, the caller's name, and records the garbage collector need not watch.
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

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
