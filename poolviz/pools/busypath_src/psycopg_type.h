/* poolviz.pools._busypath, part of: The PsycopgBusyPath type: its methods and members.
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

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
