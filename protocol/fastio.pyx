# SPDX-License-Identifier: MIT
# cython: language_level=3
"""fastio.py's functions in C: what the native build compiles for zeromesh.protocol.fastio.

fastio.py is the reference and the fallback (ZEROMESH_NATIVE=off, or no compiler); this file must
behave as it does, which tests/unit/test_fastio.py checks against both. On a plain zmq.Socket each
frame goes straight through libzmq's zmq_msg_recv/zmq_msg_send into bytes (pyzmq makes a Frame
object per frame and builds a zmq.Again in Python, with an import and strerror, for every empty
read: measured 3.9 against 0.9 us for a 3-frame message, 5.4 against 1.2 us for an empty read).
Other sockets (zmq.green's) keep their own methods, as in fastio.py.

libzmq's functions are the ones pyzmq already loaded, found through pyzmq's own extension with
dlsym, so nothing links against a libzmq of its own: the sockets are pyzmq's, and two copies of
libzmq in one process would not share them.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uintptr_t
from libc.string cimport memcpy

import zmq
import zmq.backend.cython._zmq as _pyzmq_backend

cdef extern from "<dlfcn.h>" nogil:
    void *dlopen(const char *filename, int flags)
    void *dlsym(void *handle, const char *symbol)
    char *dlerror()
    int RTLD_NOW
    int RTLD_NOLOAD

cdef extern from "<errno.h>":
    int EAGAIN
    int EINTR

cdef extern from *:
    """
    /* libzmq's message type as zmq.h (4.x) declares it: 64 opaque bytes, pointer-aligned. */
    typedef struct zmq_msg_t { __attribute__((aligned(sizeof(void *)))) unsigned char _[64]; } zmq_msg_t;
    """
    ctypedef struct zmq_msg_t:
        pass

ctypedef int (*msg_init_t)(zmq_msg_t *) noexcept nogil
ctypedef int (*msg_init_size_t)(zmq_msg_t *, size_t) noexcept nogil
ctypedef int (*msg_io_t)(zmq_msg_t *, void *, int) noexcept nogil
ctypedef int (*msg_close_t)(zmq_msg_t *) noexcept nogil
ctypedef void *(*msg_data_t)(zmq_msg_t *) noexcept nogil
ctypedef size_t (*msg_size_t)(const zmq_msg_t *) noexcept nogil
ctypedef int (*msg_more_t)(const zmq_msg_t *) noexcept nogil
ctypedef const char *(*msg_gets_t)(const zmq_msg_t *, const char *) noexcept nogil
ctypedef int (*errno_t)() noexcept nogil

cdef msg_init_t msg_init
cdef msg_init_size_t msg_init_size
cdef msg_io_t msg_send
cdef msg_io_t msg_recv
cdef msg_close_t msg_close
cdef msg_data_t msg_data
cdef msg_size_t msg_size
cdef msg_more_t msg_more
cdef msg_gets_t msg_gets
cdef errno_t zmq_errno

SNDMORE = int(zmq.SNDMORE)
NOBLOCK = int(zmq.NOBLOCK)
RCVMORE = int(zmq.RCVMORE)

cdef int C_SNDMORE = SNDMORE
cdef int C_NOBLOCK = NOBLOCK
cdef int C_ETERM = zmq.ETERM
cdef int C_ENOTSOCK = zmq.ENOTSOCK
cdef object PlainSocket = zmq.Socket


cdef void *_symbol(void *library, bytes name) except NULL:
    cdef void *found = dlsym(library, name)
    if found == NULL:
        raise ImportError(f"zeromesh.protocol.fastio (compiled): libzmq's {name.decode()} not found through pyzmq")
    return found


cdef void _bind() except *:
    """libzmq's functions from the copy pyzmq's extension loaded (dlsym searches its dependencies)."""
    global msg_init, msg_init_size, msg_send, msg_recv, msg_close, msg_data, msg_size, msg_more, msg_gets, zmq_errno
    path = _pyzmq_backend.__file__.encode()
    cdef void *library = dlopen(path, RTLD_NOW | RTLD_NOLOAD)
    if library == NULL:
        raise ImportError(f"zeromesh.protocol.fastio (compiled): pyzmq's backend not loaded: {dlerror()!r}")
    msg_init = <msg_init_t>_symbol(library, b"zmq_msg_init")
    msg_init_size = <msg_init_size_t>_symbol(library, b"zmq_msg_init_size")
    msg_send = <msg_io_t>_symbol(library, b"zmq_msg_send")
    msg_recv = <msg_io_t>_symbol(library, b"zmq_msg_recv")
    msg_close = <msg_close_t>_symbol(library, b"zmq_msg_close")
    msg_data = <msg_data_t>_symbol(library, b"zmq_msg_data")
    msg_size = <msg_size_t>_symbol(library, b"zmq_msg_size")
    msg_more = <msg_more_t>_symbol(library, b"zmq_msg_more")
    msg_gets = <msg_gets_t>_symbol(library, b"zmq_msg_gets")
    zmq_errno = <errno_t>_symbol(library, b"zmq_errno")


_bind()


cdef object _error(int err):
    """The exception pyzmq raises for errno `err` (its subclasses for the ones callers catch)."""
    if err == EAGAIN:
        return zmq.Again(err)
    if err == C_ETERM:
        return zmq.ContextTerminated(err)
    return zmq.ZMQError(err)


cdef void *_handle(sock) except NULL:
    if sock.closed:
        raise zmq.ZMQError(C_ENOTSOCK)
    return <void *><uintptr_t>sock.underlying


cdef int _recv_one(zmq_msg_t *msg, void *handle, int flags) except -2:
    """One frame into msg: 0, or -1 for EAGAIN (nothing to read); raises any other error."""
    cdef int rc, err
    while True:
        if flags & C_NOBLOCK:
            rc = msg_recv(msg, handle, flags)
        else:  # a blocking read (a thread caller's, with RCVTIMEO) lets other threads run
            with nogil:
                rc = msg_recv(msg, handle, flags)
        if rc >= 0:
            return 0
        err = zmq_errno()
        if err == EINTR:
            PyErr_CheckSignals()  # a signal handler's exception ends the read, as in pyzmq
            continue
        if err == EAGAIN:
            return -1
        raise _error(err)


cdef object _recv(sock, int flags, bint keyed, bint nowait):
    """A whole message as a list of bytes; None when `nowait` and nothing is ready."""
    cdef zmq_msg_t msg
    cdef void *handle = _handle(sock)
    cdef const char *user_id
    frames = []
    key = ""
    msg_init(&msg)
    try:
        if _recv_one(&msg, handle, flags) < 0:
            if nowait:
                return None
            raise zmq.Again(EAGAIN)
        while True:
            frames.append(PyBytes_FromStringAndSize(<char *>msg_data(&msg), msg_size(&msg)))
            if keyed and len(frames) == 2:  # as fastio.py: from the frame after the routing id
                user_id = msg_gets(&msg, b"User-Id")
                if user_id != NULL:
                    key = user_id.decode("utf-8", "replace")
            if not msg_more(&msg):
                break
            if _recv_one(&msg, handle, 0) < 0:  # a multipart message arrives whole: cannot happen
                raise zmq.Again(EAGAIN)
    finally:
        msg_close(&msg)
    if keyed:
        return frames, key
    return frames


def recv_frames(sock, int flags=0):
    """Receive a whole multipart message as bytes. Raises zmq.Again with NOBLOCK when none is ready."""
    if type(sock) is not PlainSocket:
        return _recv_python(sock, flags)
    return _recv(sock, flags, False, False)


def recv_frames_nowait(sock):
    """The next whole message as bytes, or None when none is ready (no zmq.Again to build and catch)."""
    if type(sock) is not PlainSocket:
        try:
            return _recv_python(sock, NOBLOCK)
        except zmq.Again:
            return None
    return _recv(sock, C_NOBLOCK, False, True)


def recv_frames_keyed(sock, int flags=0):
    """recv_frames, and the ZAP User-Id the message came with (the CURVE key's name; "" when none).
    Read from the message itself, not the routing id, so a peer cannot claim another's key."""
    if type(sock) is not PlainSocket:
        return _recv_keyed_python(sock, flags)
    return _recv(sock, flags, True, False)


def send_frames(sock, frames, int flags=0):
    """Send a multipart message. With NOBLOCK, only the first frame can raise zmq.Again."""
    cdef zmq_msg_t msg
    cdef Py_ssize_t i, n, size
    cdef int rc, err, each
    cdef void *handle
    cdef const unsigned char[::1] view
    if type(sock) is not PlainSocket:
        _send_python(sock, frames, flags)
        return
    handle = _handle(sock)
    n = len(frames)
    for i in range(n):
        data = frames[i]
        each = flags | C_SNDMORE if i < n - 1 else flags
        if type(data) is bytes:
            size = PyBytes_GET_SIZE(data)
            msg_init_size(&msg, size)
            memcpy(msg_data(&msg), PyBytes_AS_STRING(data), size)
        else:  # any other buffer, as pyzmq takes it (a str is refused, as there)
            if isinstance(data, str):
                raise TypeError("unicode not allowed, use send_string")
            view = memoryview(data).cast("B")
            size = view.shape[0]
            msg_init_size(&msg, size)
            if size:
                memcpy(msg_data(&msg), &view[0], size)
        while True:
            if each & C_NOBLOCK:
                rc = msg_send(&msg, handle, each)
            else:
                with nogil:
                    rc = msg_send(&msg, handle, each)
            if rc >= 0:
                break  # libzmq owns the message now
            err = zmq_errno()
            if err == EINTR:
                try:
                    PyErr_CheckSignals()
                except BaseException:
                    msg_close(&msg)
                    raise
                continue
            msg_close(&msg)
            raise _error(err)


# Sockets that are not plain zmq.Sockets (zmq.green's) keep their own methods: fastio.py's code.


def _send_python(sock, frames, int flags):
    send = sock.send
    more = SNDMORE | flags
    last = len(frames) - 1
    for i in range(last):
        send(frames[i], more)
    send(frames[last], flags)


def _recv_python(sock, int flags):
    recv = sock.recv
    frame = recv(flags, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = recv(0, copy=False)
        frames.append(frame.bytes)
    return frames


def _recv_keyed_python(sock, int flags):
    recv = sock.recv
    frame = recv(flags, copy=False)
    frames = [frame.bytes]
    key = ""
    while frame.more:
        frame = recv(0, copy=False)
        if not key:
            try:
                key = str(frame.get("User-Id") or "")
            except zmq.ZMQError:  # EINVAL: no ZAP handler named one (no CURVE)
                pass
        frames.append(frame.bytes)
    return frames, key
