#include "core/curve_keys.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace clinrl {

namespace {

namespace fs = std::filesystem;

constexpr size_t kZ85KeyLength = 40;  // 32 bytes in Z85

struct KeyFile {
  const char* name;
  std::string CurveKeys::*member;
  bool secret;
};

constexpr KeyFile kKeyFiles[] = {
    {"server.public", &CurveKeys::server_public, false},
    {"server.secret", &CurveKeys::server_secret, true},
    {"client.public", &CurveKeys::client_public, false},
    {"client.secret", &CurveKeys::client_secret, true},
};

void KeyPair(std::string* public_key, std::string* secret_key) {
  char pub[kZ85KeyLength + 1] = {};
  char sec[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw IoError(fmt::format(
        "zmq_curve_keypair failed: {} (errno {}); libzmq must be built with "
        "libsodium for CURVE (Debian's libzmq5 is)",
        zmq_strerror(zmq_errno()), zmq_errno()));
  }
  *public_key = pub;
  *secret_key = sec;
}

// A fresh sibling of `dir` that no other process uses.
std::string TemporaryFolderFor(const std::string& dir) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}.tmp.{}.{}", dir, static_cast<long>(::getpid()),
                     counter.fetch_add(1));
}

// Writes the four files into a new private folder; returns its path.
std::string WriteTemporaryFolder(const CurveKeys& keys,
                                 const std::string& dir) {
  const fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty()) MakeDirectories(parent.string());
  const std::string tmp = TemporaryFolderFor(dir);
  CLINRL_CHECK_ERRNO(::mkdir(tmp.c_str(), 0700) == 0, "mkdir",
                     "creating the key folder {}", tmp);
  // The folder's mode does not depend on the umask either.
  CLINRL_CHECK_ERRNO(::chmod(tmp.c_str(), 0700) == 0, "chmod",
                     "making {} private", tmp);
  for (const KeyFile& f : kKeyFiles) {
    const std::string path = tmp + "/" + f.name;
    WriteFileAtomic(path, keys.*f.member + "\n");
    CLINRL_CHECK_ERRNO(::chmod(path.c_str(), 0600) == 0, "chmod",
                       "making {} private", path);
  }
  SyncDirectory(tmp);
  return tmp;
}

// Renames `tmp` to `dir`; false (and `tmp` removed) when `dir` exists.
bool PublishFolder(const std::string& tmp, const std::string& dir) {
  if (::rename(tmp.c_str(), dir.c_str()) == 0) {
    SyncDirectory(fs::path(dir).parent_path().string());
    return true;
  }
  const int err = errno;
  std::error_code ignored;
  fs::remove_all(tmp, ignored);  // nothing else can use it
  if (err == EEXIST || err == ENOTEMPTY) return false;
  errno = err;
  CLINRL_CHECK_ERRNO(false, "rename", "moving the key folder {} to {}", tmp,
                     dir);
  return false;
}

std::string ReadKeyFile(const std::string& dir, const KeyFile& f,
                        const std::string& field) {
  const std::string path = dir + "/" + f.name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw BadRequest(fmt::format(
        "{}: {} is missing ({}); expected a key folder written by `clinrl "
        "keys generate DIR` or by `clinrl distributed run`",
        field, path, std::strerror(errno)));
  }
  if (f.secret && (st.st_mode & 077) != 0) {
    throw BadRequest(fmt::format(
        "{}: {} has mode {:o}, expected 600: others than its owner can read "
        "this secret key (chmod 600 {})",
        field, path, st.st_mode & 0777, path));
  }
  std::string key = ReadFile(path);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
    key.pop_back();
  }
  uint8_t decoded[32];
  if (key.size() != kZ85KeyLength ||
      zmq_z85_decode(decoded, key.c_str()) == nullptr) {
    throw BadRequest(fmt::format(
        "{}: {} holds {} characters that are not a key, expected a Z85 CURVE "
        "key of 40 characters",
        field, path, key.size()));
  }
  return key;
}

}  // namespace

CurveKeys GenerateCurveKeys() {
  CurveKeys keys;
  KeyPair(&keys.server_public, &keys.server_secret);
  KeyPair(&keys.client_public, &keys.client_secret);
  return keys;
}

void WriteCurveKeys(const CurveKeys& keys, const std::string& dir) {
  const std::string tmp = WriteTemporaryFolder(keys, dir);
  if (!PublishFolder(tmp, dir)) {
    throw BadRequest(fmt::format(
        "{}: the folder exists; expected a new folder (keys in use are never "
        "overwritten: remove it first if no server or run uses them)",
        dir));
  }
}

CurveKeys ReadCurveKeys(const std::string& dir, const std::string& field) {
  CurveKeys keys;
  for (const KeyFile& f : kKeyFiles) {
    keys.*f.member = ReadKeyFile(dir, f, field);
  }
  keys.dir = dir;
  return keys;
}

CurveKeys EnsureCurveKeys(const std::string& dir, const std::string& field) {
  if (!fs::exists(dir)) {
    const std::string tmp = WriteTemporaryFolder(GenerateCurveKeys(), dir);
    // Losing the race is fine: the winner's keys are read below.
    (void)PublishFolder(tmp, dir);
  }
  return ReadCurveKeys(dir, field);
}

}  // namespace clinrl
