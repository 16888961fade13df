"""CURVE for the Python env server: the key folder of ``clinrl keys
generate`` (server.public, server.secret, client.public, client.secret, Z85
text) and the same rules as the C++ servers (core/curve_auth.h): a tcp://
server is a CURVE server with the run's secret key, a ZAP handler accepts
only the run's client public key and logs each refusal, and a monitor of the
socket logs clients that fail earlier in the handshake (no keys, or another
server key). ipc:// and inproc:// never use CURVE. pyzmq's authenticator
binds the context's one ZAP endpoint, so one CURVE server per context (the
command line serves one).
"""

import logging
import os
import stat
import threading

import zmq
import zmq.auth.thread
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

KEY_FILES = ("server.public", "server.secret", "client.public",
             "client.secret")
ZAP_DOMAIN = "clinrl"

log = logging.getLogger("clinrl_env.curve")


def read_curve_keys(folder, field="--curve-keys"):
    """{file name: Z85 key as bytes}; raises ValueError naming `field`, the
    file and what was expected."""
    keys = {}
    for name in KEY_FILES:
        path = os.path.join(folder, name)
        try:
            st = os.stat(path)
            with open(path, "rb") as f:
                key = f.read().strip()
        except OSError as e:
            raise ValueError("%s: %s is missing (%s); expected a key folder "
                             "written by `clinrl keys generate DIR`"
                             % (field, path, e.strerror))
        if name.endswith(".secret") and st.st_mode & 0o077:
            raise ValueError("%s: %s has mode %o, expected 600: others than "
                             "its owner can read this secret key"
                             % (field, path, stat.S_IMODE(st.st_mode)))
        if len(key) != 40:
            raise ValueError("%s: %s holds %d characters, expected a Z85 "
                             "CURVE key of 40" % (field, path, len(key)))
        try:
            # As the C++ reader does: a key of the right length may still
            # hold characters outside Z85's alphabet.
            z85.decode(key)
        except Exception:
            raise ValueError("%s: %s is not a Z85 CURVE key (characters "
                             "outside the Z85 alphabet)" % (field, path))
        keys[name] = key
    return keys


class _ClientKeyCheck:
    def __init__(self, client_public, what):
        self.client_public = client_public
        self.what = what

    def callback(self, domain, key):
        if key == self.client_public:
            return True
        log.warning("%s: refused a client: its CURVE public key %s is not "
                    "this run's client key", self.what, key.decode())
        return False


_PROTOCOL_ERRORS = {
    0x11000002: "it has no CURVE keys (it offered another security "
                "mechanism)",
    0x11000001: "its handshake did not decrypt (it has another server public "
                "key)",
}


def _watch(monitor, what):
    while True:
        try:
            event = recv_monitor_message(monitor)
        except zmq.ZMQError:
            return
        if event["event"] == zmq.EVENT_MONITOR_STOPPED:
            monitor.close(0)
            return
        value = event["value"]
        reason = _PROTOCOL_ERRORS.get(
            value, "handshake error 0x%x" % value) \
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL \
            else "its connection ended in the handshake"
        log.warning("%s: refused a client: %s; clients need this run's CURVE "
                    "keys (--curve-keys)", what, reason)


def secure_server(socket, endpoint, keys, what):
    """Call before ``socket.bind(endpoint)``; returns the authenticator to
    stop at close (None when CURVE does not apply)."""
    if not keys or not endpoint.startswith("tcp://"):
        return None
    auth = zmq.auth.thread.ThreadAuthenticator(socket.context)
    auth.start()
    auth.configure_curve_callback(
        domain=ZAP_DOMAIN,
        credentials_provider=_ClientKeyCheck(keys["client.public"], what))
    socket.curve_secretkey = keys["server.secret"]
    socket.curve_server = True
    socket.zap_domain = ZAP_DOMAIN.encode()
    monitor = socket.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_MONITOR_STOPPED)
    threading.Thread(target=_watch, args=(monitor, what), daemon=True).start()
    return auth
