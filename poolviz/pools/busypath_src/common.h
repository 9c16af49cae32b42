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

/* untracked() for a record (now, kind, conn, thread, in_use, idle, waiting, extra): only its payload can be a
   container, so only that is looked at. */
static inline PyObject *
untracked_record(PyObject *record)
{
    if (record == NULL) {
        return NULL;
    }
    PyObject *extra = PyTuple_GET_ITEM(record, 7);
    if (extra == NULL || !PyObject_IS_GC(extra) || !PyObject_GC_IsTracked(extra)) {
        PyObject_GC_UnTrack(record);
    }
    return record;
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

/* asyncio.current_task, and "get_name" (set when the module is made); where asyncio keeps the running task of
   each loop in a dict (asyncio.tasks._current_tasks, CPython 3.11), that dict and _asyncio._get_running_loop,
   which answer as current_task() does without its Python frame. */
static PyObject *current_task_fn, *str_get_name, *running_loop_fn, *current_tasks;

/* The running task, borrowed (NULL without an error: none, or no loop running in this thread). */
static PyObject *
running_task(PyObject **owned)
{
    *owned = NULL;
    if (running_loop_fn != NULL && current_tasks != NULL) {
        PyObject *loop = PyObject_CallNoArgs(running_loop_fn);
        if (loop == NULL || loop == Py_None) {
            Py_XDECREF(loop);
            return NULL;
        }
        PyObject *task = PyDict_GetItemWithError(current_tasks, loop);
        Py_DECREF(loop);
        return task == Py_None ? NULL : task;
    }
    PyObject *task = PyObject_CallNoArgs(current_task_fn);
    if (task == NULL) {
        if (PyErr_ExceptionMatches(PyExc_RuntimeError)) {
            PyErr_Clear(); /* no event loop in this thread */
        }
        return NULL;
    }
    if (task == Py_None) {
        Py_DECREF(task);
        return NULL;
    }
    *owned = task;
    return task;
}

/* The caller's name as the Python hooks give it (poolviz.pools.callers): in an asyncio pool the running task's
   name, else (or with no task running) this thread's. `ask` as for thread_name. A new reference, or NULL. */
static PyObject *
task_or_thread_name(int asyncio, PyObject *ask)
{
    if (asyncio) {
        PyObject *owned;
        PyObject *task = running_task(&owned);
        if (task != NULL) {
            PyObject *name = PyObject_CallMethodNoArgs(task, str_get_name);
            Py_XDECREF(owned);
            return name;
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return thread_name(ask);
}

/* Find asyncio's current_task, and its faster equivalent where there is one. 0, or -1 on error. */
static int
find_current_task(void)
{
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    current_task_fn = asyncio ? PyObject_GetAttrString(asyncio, "current_task") : NULL;
    Py_XDECREF(asyncio);
    if (current_task_fn == NULL) {
        return -1;
    }
    PyObject *tasks = PyImport_ImportModule("asyncio.tasks");
    PyObject *native = tasks ? PyImport_ImportModule("_asyncio") : NULL;
    PyObject *dict = tasks ? PyObject_GetAttrString(tasks, "_current_tasks") : NULL;
    PyObject *loop_fn = native ? PyObject_GetAttrString(native, "_get_running_loop") : NULL;
    PyErr_Clear(); /* any of them missing: current_task() it is */
    if (dict != NULL && PyDict_CheckExact(dict) && loop_fn != NULL) {
        current_tasks = Py_NewRef(dict);
        running_loop_fn = Py_NewRef(loop_fn);
    }
    Py_XDECREF(dict);
    Py_XDECREF(loop_fn);
    Py_XDECREF(native);
    Py_XDECREF(tasks);
    return 0;
}
