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

   One translation unit, in parts: busypath_src/ holds one file per job,
   included below in order, so every function stays static (file-local).
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

/* The parts, in the order each needs the ones before it. */
#include "busypath_src/common.h"
#include "busypath_src/sites.h"
#include "busypath_src/sqlalchemy.h"
#include "busypath_src/psycopg.h"
#include "busypath_src/rlock.h"
#include "busypath_src/psycopg_checkin.h"
#include "busypath_src/psycopg_async.h"
#include "busypath_src/psycopg_type.h"

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
    str_get_name = PyUnicode_InternFromString("get_name");
    if (!str_checkout || !str_checkin || !key_thread_name || !str_get_name || PyType_Ready(&BusyPathType) < 0) {
        return NULL;
    }
    if (find_current_task() < 0) {
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
