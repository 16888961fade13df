// ZeroMQ plumbing shared by every folder that opens sockets (envs, rewards,
// distributed, rollout, trainer): one context for the process, typed errors
// for failed ZeroMQ calls, endpoint checks, the one way a client connects a
// DEALER and the one way a multipart message is received.
//
// One context, because inproc:// connects only sockets of the same context:
// an env server, a reward server and a learner in one process must share it.
// It is never terminated, because zmq_ctx_term blocks until every socket is
// closed and static destruction order cannot promise that.
#pragma once

#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace clinrl {

zmq::context_t& SharedZmqContext();

// Rethrows a cppzmq error as IoError naming what was being done (and the
// endpoint).
[[noreturn]] void ThrowZmqError(const zmq::error_t& e, const std::string& what);

// Throws BadRequest naming `field` unless `endpoint` starts with tcp://,
// ipc:// or inproc:// and names something after it.
void CheckEndpoint(const std::string& endpoint, const std::string& field);

// A fresh, process-unique inproc endpoint name: inproc://<stem>-<n>.
std::string UniqueInprocEndpoint(const std::string& stem);

// For ipc:// endpoints: creates the socket's folder (bind fails otherwise).
void PrepareBind(const std::string& endpoint);

// A DEALER on the shared context, connected to `endpoint`, with the settings
// every client of clinrl's protocols uses (env, reward, work, weights and
// heartbeat clients; zmq_util.cc says why each). Throws IoError naming
// `what` ("connecting the env client to 'tcp://...'") when ZeroMQ refuses.
std::unique_ptr<zmq::socket_t> ConnectDealer(const std::string& endpoint,
                                             const std::string& what);

// One whole multipart message, every frame in order (a ROUTER's first frame
// is the sender's identity); empty when none is waiting: with dontwait at
// once, blocking when the socket's rcvtimeo runs out. ZeroMQ delivers the
// frames of a message together, so once the first is here the rest are.
// ZeroMQ errors are thrown as zmq::error_t, as recv throws them: a server
// loop keeps serving (or ends on ETERM), a client rethrows with
// ThrowZmqError naming its endpoint.
std::vector<zmq::message_t> ReceiveMultipart(
    zmq::socket_t& socket, zmq::recv_flags flags = zmq::recv_flags::dontwait);

}  // namespace clinrl
