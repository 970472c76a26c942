/* wsinspect._speedups: the compiled hot path (optional).
 *
 * Each function here has a pure-Python reference that defines its behaviour
 * (named in its docstring) and that runs instead when this module is not built
 * or WSINSPECT_NO_EXTENSIONS=1 is set; tests/test_speedups.py requires both to
 * give identical results. Every read is bounds-checked against the buffer's
 * length: the input is untrusted capture data.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* packet.py's _tcp_fields_py: the cases this module does not decode go there. */
static PyObject *tcp_fields_fallback = NULL;

static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

PyDoc_STRVAR(unmask_doc,
             "unmask(payload, key) -> bytes\n\n"
             "XOR a payload with its 4-byte masking key (RFC 6455 5.3); reference: frames._unmask_py.");

static PyObject *unmask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "unmask() takes 2 arguments");
        return NULL;
    }
    Py_buffer data, key;
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "a masking key is 4 bytes");
        goto done;
    }
    Py_ssize_t n = data.len;
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL)
        goto done;
    const unsigned char *src = data.buf;
    const unsigned char *k = key.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
    /* Eight bytes at a time: the key repeated twice is a 64-bit mask in memory
     * order; memcpy keeps the loads and stores free of alignment assumptions. */
    uint64_t mask8;
    unsigned char k8[8] = {k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]};
    memcpy(&mask8, k8, 8);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= mask8;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ k[i & 3];
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(tcp_fields_doc,
             "tcp_fields(linktype, data) -> TcpFields | None\n\n"
             "packet.tcp_fields: Ethernet/IPv4 (no options)/TCP packets decoded here, every\n"
             "other case (other links, IPv6, VLAN, options, cut packets) by packet._tcp_fields_py.");

static PyObject *tcp_fields(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "tcp_fields() takes 2 arguments");
        return NULL;
    }
    long linktype = PyLong_AsLong(args[0]);
    if (linktype == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *d = view.buf;
    Py_ssize_t n = view.len;
    /* The same test as the reference's fast path: Ethernet, EtherType 0x0800,
     * version 4 with IHL 5, and room for the 20-byte TCP header. */
    if (linktype == 1 && n >= 54 && d[12] == 0x08 && d[13] == 0 && d[14] == 0x45) {
        Py_ssize_t end = 14 + (Py_ssize_t)be16(d + 16);
        uint16_t frag = be16(d + 20);
        unsigned char proto = d[23];
        if (proto != 6 || (frag & 0x3FFF)) {
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        if (end <= n && end >= 54) {
            Py_ssize_t start = 34 + (Py_ssize_t)(d[46] >> 4) * 4;
            if (start > end || start < 54) {
                PyBuffer_Release(&view);
                Py_RETURN_NONE;
            }
            /* Addresses (26..34) and ports (34..38) are contiguous: the flow key. */
            PyObject *t = PyTuple_New(6);
            PyObject *key = PyBytes_FromStringAndSize((const char *)d + 26, 12);
            PyObject *seq = PyLong_FromUnsignedLong(be32(d + 38));
            PyObject *ack = PyLong_FromUnsignedLong(be32(d + 42));
            PyObject *flags = PyLong_FromLong(d[47]);
            PyObject *pstart = PyLong_FromSsize_t(start);
            PyObject *pend = PyLong_FromSsize_t(end);
            PyBuffer_Release(&view);
            if (!t || !key || !seq || !ack || !flags || !pstart || !pend) {
                Py_XDECREF(t);
                Py_XDECREF(key);
                Py_XDECREF(seq);
                Py_XDECREF(ack);
                Py_XDECREF(flags);
                Py_XDECREF(pstart);
                Py_XDECREF(pend);
                return NULL;
            }
            PyTuple_SET_ITEM(t, 0, key);
            PyTuple_SET_ITEM(t, 1, seq);
            PyTuple_SET_ITEM(t, 2, ack);
            PyTuple_SET_ITEM(t, 3, flags);
            PyTuple_SET_ITEM(t, 4, pstart);
            PyTuple_SET_ITEM(t, 5, pend);
            return t;
        }
        /* A packet cut by the snapshot length or with a short IP length: rare. */
    }
    PyBuffer_Release(&view);
    if (tcp_fields_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tcp_fields: set_tcp_fields_fallback() was not called");
        return NULL;
    }
    return PyObject_Vectorcall(tcp_fields_fallback, args, 2, NULL);
}

PyDoc_STRVAR(set_fallback_doc,
             "set_tcp_fields_fallback(func) -> None\n\n"
             "The reference tcp_fields, called for every packet the compiled one does not decode.");

static PyObject *set_tcp_fields_fallback(PyObject *self, PyObject *func)
{
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "the fallback must be callable");
        return NULL;
    }
    Py_INCREF(func);
    Py_XSETREF(tcp_fields_fallback, func);
    Py_RETURN_NONE;
}

static PyMethodDef speedups_methods[] = {
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL, unmask_doc},
    {"tcp_fields", (PyCFunction)(void (*)(void))tcp_fields, METH_FASTCALL, tcp_fields_doc},
    {"set_tcp_fields_fallback", set_tcp_fields_fallback, METH_O, set_fallback_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "wsinspect._speedups", "wsinspect's optional compiled hot path.", -1, speedups_methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&speedups_module); }
