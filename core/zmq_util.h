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

#include <cstdint>
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

// Whether binding `endpoint` is reachable from this host alone: ipc://,
// inproc://, or tcp:// on a loopback address (127.0.0.0/8, localhost, ::1).
// tcp://*, 0.0.0.0 and every other address are not.
bool IsLoopbackEndpoint(const std::string& endpoint);

// Servers are closed by default: throws BadRequest naming `field` when
// `endpoint` would bind beyond loopback, `insecure` is false and no CURVE
// keys are installed (core/curve_auth.h), saying that anyone who can reach
// the port would be served and how to opt in.
void RequireLoopbackUnlessInsecure(const std::string& endpoint, bool insecure,
                                   const std::string& field);

// A fresh, process-unique inproc endpoint name: inproc://<stem>-<n>.
std::string UniqueInprocEndpoint(const std::string& stem);

// For ipc:// endpoints: creates the socket's folder (bind fails otherwise).
void PrepareBind(const std::string& endpoint);

// A DEALER on the shared context, connected to `endpoint`, with the settings
// every client of clinrl's protocols uses (env, reward, work, weights and
// heartbeat clients; zmq_util.cc says why each), CURVE included over tcp://
// when the process has keys (core/curve_auth.h). Throws IoError naming
// `what` ("connecting the env client to 'tcp://...'") when ZeroMQ refuses.
std::unique_ptr<zmq::socket_t> ConnectDealer(const std::string& endpoint,
                                             const std::string& what);

// Follows the connection of a connecting socket (ZeroMQ's socket monitor). A
// server that exits or restarts drops its connections at once, and a hung
// host after the ZMTP heartbeat timeout; a request in flight on the dropped
// connection will never be answered, and one sent while the peer is gone
// would wait for a server that may never come back, so a client fails them
// now instead of at its request timeout. Destroy it before the socket.
class ConnectionMonitor {
 public:
  ConnectionMonitor(zmq::socket_t& socket, const std::string& what);
  ~ConnectionMonitor();
  ConnectionMonitor(const ConnectionMonitor&) = delete;
  ConnectionMonitor& operator=(const ConnectionMonitor&) = delete;
  // Reads the events waiting (never blocks); returns how many of them were
  // disconnects.
  int64_t Update();
  // A peer was connected once and none is now, as of the last Update. Never
  // true before the first connection: a server may start after its clients.
  bool lost() const { return ever_connected_ && connected_ == 0; }
  // Poll it beside the socket: readable when an event waits.
  zmq::pollitem_t PollItem();
  // Why the last handshake failed ("" when none failed since the last
  // success): a peer refused this socket's CURVE keys, or their absence.
  const std::string& handshake_failure() const { return handshake_failure_; }

 private:
  zmq::socket_t& socket_;
  std::unique_ptr<zmq::socket_t> events_;
  int64_t connected_ = 0;
  bool ever_connected_ = false;
  std::string handshake_failure_;
};

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
