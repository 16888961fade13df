// The CURVE keys of a run (docs/distributed.md, "Keys and what they
// protect"): one server key pair and one client key pair, as Z85 text, in a
// folder of four files (server.public, server.secret, client.public,
// client.secret).
//
// One pair per side rather than one per process: every server of a run
// shares the server pair and every client the client pair, so the folder is
// made once (by `clinrl distributed run` in <run dir>/curve, or by `clinrl
// keys generate DIR` for servers started by hand) and any role that can read
// it takes part. The folder is 0700 and every file 0600: whoever can read the
// secrets is, as far as ZeroMQ can tell, a member of the run.
#pragma once

#include <string>

namespace clinrl {

struct CurveKeys {
  std::string server_public;  // Z85, 40 characters each
  std::string server_secret;
  std::string client_public;
  std::string client_secret;
  std::string dir;  // where they were read from (for messages); may be empty
};

// Two fresh key pairs from libsodium (zmq_curve_keypair); throws IoError when
// libzmq was built without CURVE.
CurveKeys GenerateCurveKeys();

// Writes `keys` as the folder `dir`, which must not exist: the files are
// written into a private temporary folder that is then renamed to `dir`, so
// a reader sees no folder or a complete one. Throws BadRequest naming `dir`
// when it exists (keys in use are never overwritten).
void WriteCurveKeys(const CurveKeys& keys, const std::string& dir);

// Reads the folder; throws BadRequest naming `field`, the file and what was
// expected when a file is missing, is not a Z85 key of 40 characters, or is
// a secret that others than its owner may read.
CurveKeys ReadCurveKeys(const std::string& dir, const std::string& field);

// The keys of a run in `dir`: read when the folder exists, else generated and
// written. Processes that start at once agree on one pair: the folder rename
// of exactly one of them succeeds and the others read its keys.
CurveKeys EnsureCurveKeys(const std::string& dir, const std::string& field);

}  // namespace clinrl
