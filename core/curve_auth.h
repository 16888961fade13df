// CURVE on clinrl's tcp:// sockets (docs/distributed.md, "Keys and what they
// protect").
//
// The keys are the process's, not each socket's: a process belongs to one
// run, and a run has one key folder, so the command installs the keys once at
// start (`--curve-keys DIR`, or the run's <run dir>/curve) and every tcp bind
// and connect of the process then uses them, as every socket shares the one
// ZeroMQ context. inproc:// and ipc:// sockets never use CURVE: they reach
// only this process or whoever can open the socket's folder.
//
// Servers authenticate clients, which plain CURVE does not do (it accepts
// any client key pair): a ZAP handler (ZeroMQ's authentication protocol, on
// inproc://zeromq.zap.01 of the shared context) accepts only the run's client
// public key, and logs every refusal, as does a monitor of each server socket
// for clients that fail earlier in the handshake (no keys, or not this
// server's public key). The handler answers every request, a malformed one
// with 400: ZeroMQ holds a handshake until its ZAP reply comes, and a request
// left unanswered would hold every later one.
#pragma once

#include <optional>
#include <string>
#include <zmq.hpp>

#include "core/curve_keys.h"

namespace clinrl {

// Makes `keys` the process's (nullopt: no CURVE). Sockets already bound or
// connected keep what they had.
void InstallCurveKeys(std::optional<CurveKeys> keys);
std::optional<CurveKeys> InstalledCurveKeys();

// Whether a bind or connect of `endpoint` uses CURVE now: a tcp:// endpoint
// with keys installed.
bool UsesCurve(const std::string& endpoint);

// Call before binding a server socket to `endpoint`: with CURVE, makes it a
// CURVE server with the run's secret key that accepts only the run's client
// key, and logs each refused client as "`what`: refused ...". Nothing for
// other endpoints or without keys. Throws IoError naming `what`.
void SecureServerSocket(zmq::socket_t& socket, const std::string& endpoint,
                        const std::string& what);

// Call before connecting a client socket to `endpoint`: with CURVE, sets the
// run's server public key and the client key pair.
void SecureClientSocket(zmq::socket_t& socket, const std::string& endpoint);

// For a client's error when `endpoint` stays silent or drops it: what CURVE
// may have to do with it ("" for ipc:// and inproc://).
std::string CurveHint(const std::string& endpoint);

}  // namespace clinrl
