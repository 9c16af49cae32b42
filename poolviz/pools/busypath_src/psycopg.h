/* poolviz.pools._busypath, part of: psycopg_pool: Tracked, PsycopgBusyPath, and the checkout side (getconn, _get_ready_connection, putconn).
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

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
    return untracked_record(record);
}

/* Who is asking: this thread's name, or in an asyncio pool the task's (a new reference, or NULL). */
static PyObject *
caller_name(PsycopgPath *self)
{
    return task_or_thread_name(self->asyncio, self->thread_name);
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
