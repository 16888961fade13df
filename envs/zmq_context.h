// One ZeroMQ context per process. inproc:// endpoints only connect sockets of
// the same context, so the in-process pool, its server and every client share
// this one; it is never terminated, because zmq_ctx_term blocks until every
// socket is closed and static destruction order cannot promise that.
#pragma once

#include <string>
#include <zmq.hpp>

namespace clinrl::envs {

zmq::context_t& SharedZmqContext();

// Rethrows a cppzmq error as IoError naming the call and the endpoint.
[[noreturn]] void ThrowZmqError(const zmq::error_t& e, const std::string& what);

// A fresh, process-unique inproc endpoint name: inproc://<stem>-<n>.
std::string UniqueInprocEndpoint(const std::string& stem);

// Throws BadRequest naming `field` unless `endpoint` starts with tcp://,
// ipc:// or inproc://.
void CheckEndpoint(const std::string& endpoint, const std::string& field);

}  // namespace clinrl::envs
