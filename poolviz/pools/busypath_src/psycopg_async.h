/* poolviz.pools._busypath, part of: AsyncConnectionPool: each hooked method a Step, run as await runs a coroutine.
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

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

/* Steps put by for reuse (four are made per checkout and check-in), as CPython keeps its tuples. */
#define STEP_FREELIST 16
static Step *step_freelist[STEP_FREELIST];
static int step_freelist_count;

static PyObject *
step_new(PsycopgPath *path, PyObject *inner, int kind, PyObject *conn, double started)
{
    if (inner == NULL) {
        return NULL;
    }
    Step *step;
    if (step_freelist_count > 0) {
        step = step_freelist[--step_freelist_count];
        _Py_NewReference((PyObject *)step);
    }
    else {
        step = PyObject_GC_New(Step, &StepType);
        if (step == NULL) {
            Py_DECREF(inner);
            return NULL;
        }
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
    if (step_freelist_count < STEP_FREELIST && Py_IS_TYPE(self, &StepType)) {
        step_freelist[step_freelist_count++] = self;
        return;
    }
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
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (self->inner == NULL) { /* finished: raise what was thrown in, as a finished coroutine does */
        if (PyExceptionInstance_Check(args[0])) {
            PyErr_SetObject((PyObject *)Py_TYPE(args[0]), args[0]);
        }
        else if (PyExceptionClass_Check(args[0])) {
            PyErr_SetObject(args[0], nargs >= 2 ? args[1] : NULL);
        }
        else {
            PyErr_SetString(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException");
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
