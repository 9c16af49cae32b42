/* poolviz.pools._busypath, part of: Checkout sites: sites.reused_payload's walk, over the interpreter's frames, with a cache keyed by code pointer.
   Included once, in order, by ../_busypath.c (one translation unit: everything stays static). */

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
