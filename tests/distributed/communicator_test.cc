// Every Communicator op under mpiexec (1, 2 and 3 ranks) against the result a
// single process computes from all ranks' inputs. Each rank's input is a
// deterministic function of its rank, so every rank can compute the
// reference on its own.
#include "distributed/communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/error.h"
#include "distributed/mpi_communicator.h"

namespace clinrl::distributed {
namespace {

// Bounds every collective of the suite: a rank that fails an assertion and
// skips a call ends the run with a Timeout instead of a hang.
constexpr int64_t kTimeoutMs = 60000;

Communicator& World() {
  static std::unique_ptr<Communicator> world = MakeMpiCommunicator(kTimeoutMs);
  return *world;
}

torch::Tensor InputOf(int rank, int64_t numel, torch::ScalarType dtype) {
  torch::manual_seed(1000 + rank);
  return torch::randn({numel}, torch::kFloat64).to(dtype);
}

// The reduction of every rank's input, computed in float64 in one process.
torch::Tensor Reference(int ranks, int64_t numel, torch::ScalarType dtype,
                        ReduceOp op) {
  torch::Tensor acc;
  for (int r = 0; r < ranks; ++r) {
    torch::Tensor x = InputOf(r, numel, dtype).to(torch::kFloat64);
    if (!acc.defined()) {
      acc = x;
    } else {
      acc = op == ReduceOp::kMax ? torch::maximum(acc, x) : acc + x;
    }
  }
  if (op == ReduceOp::kAvg) acc = acc / ranks;
  return acc;
}

// float32: the ring and MPI sum in a different order than the reference, a
// few float32 ulps of the summands (|x| < ~5). bfloat16: the sum is rounded
// to bfloat16 once (8 significant bits), so half an ulp, 2^-8 relative, plus
// float32 ordering; 2^-7 relative leaves margin.
double Tolerance(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? 1.0 / 128 : 1e-5;
}

void ExpectClose(const torch::Tensor& got, const torch::Tensor& want,
                 torch::ScalarType dtype, const std::string& what) {
  const torch::Tensor g = got.to(torch::kFloat64);
  const double tol = Tolerance(dtype);
  const torch::Tensor excess = (g - want).abs() - tol * (want.abs() + 1.0);
  EXPECT_LE(excess.max().item<double>(), 0.0)
      << what << ": max |diff| " << (g - want).abs().max().item<double>();
}

TEST(CommunicatorTest, WorldIsMpi) {
  Communicator& world = World();
  EXPECT_EQ(world.backend(), "mpi");
  EXPECT_GE(world.size(), 1);
  EXPECT_GE(world.rank(), 0);
  EXPECT_LT(world.rank(), world.size());
}

// 100 elements take MPI_Iallreduce; 100003 (odd, uneven chunks) the ring.
TEST(CommunicatorTest, AllReduceMatchesTheSingleProcessReduction) {
  Communicator& world = World();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64}) {
    for (auto op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
      for (int64_t numel : {int64_t{1}, int64_t{100}, int64_t{100003}}) {
        torch::Tensor t = InputOf(world.rank(), numel, dtype);
        world.AllReduce(t, op);
        EXPECT_EQ(t.scalar_type(), dtype);
        ExpectClose(t, Reference(world.size(), numel, dtype, op), dtype,
                    fmt::format("AllReduce {} {} x{}", c10::toString(dtype),
                                ReduceOpName(op), numel));
      }
    }
  }
}

TEST(CommunicatorTest, AllReduceOfInt64CountsIsExact) {
  Communicator& world = World();
  torch::Tensor t = torch::full({3}, int64_t{world.rank() + 1});
  world.AllReduce(t, ReduceOp::kSum);
  const int64_t n = world.size();
  EXPECT_EQ(t[0].item<int64_t>(), n * (n + 1) / 2);
  EXPECT_THROW(world.AllReduce(t, ReduceOp::kAvg), BadRequest);
}

TEST(CommunicatorTest, ReduceScatterGivesEachRankItsReducedChunk) {
  Communicator& world = World();
  const int n = world.size();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (auto op : {ReduceOp::kSum, ReduceOp::kAvg}) {
      for (int64_t chunk : {int64_t{7}, int64_t{50000}}) {
        torch::Tensor input = InputOf(world.rank(), chunk * n, dtype);
        torch::Tensor output = torch::empty({chunk}, dtype);
        world.ReduceScatter(input, output, op);
        const torch::Tensor want = Reference(n, chunk * n, dtype, op)
                                       .narrow(0, chunk * world.rank(), chunk);
        ExpectClose(output, want, dtype,
                    fmt::format("ReduceScatter {} {} x{}", c10::toString(dtype),
                                ReduceOpName(op), chunk));
        // The input is left as it was.
        EXPECT_TRUE(input.equal(InputOf(world.rank(), chunk * n, dtype)));
      }
    }
  }
}

TEST(CommunicatorTest, AllGatherConcatenatesInRankOrder) {
  Communicator& world = World();
  const int n = world.size();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t numel : {int64_t{5}, int64_t{70001}}) {
      torch::Tensor input = InputOf(world.rank(), numel, dtype);
      torch::Tensor output = torch::empty({numel * n}, dtype);
      world.AllGather(input, output);
      for (int r = 0; r < n; ++r) {
        EXPECT_TRUE(
            output.narrow(0, r * numel, numel).equal(InputOf(r, numel, dtype)))
            << "chunk of rank " << r << ", " << numel << " elements";
      }
    }
  }
}

TEST(CommunicatorTest, BroadcastCopiesTheRootsTensorAndBytes) {
  Communicator& world = World();
  const int root = world.size() - 1;
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    torch::Tensor t = InputOf(world.rank(), 3001, dtype);
    world.Broadcast(t, root);
    EXPECT_TRUE(t.equal(InputOf(root, 3001, dtype)));
  }
  std::string json =
      world.rank() == 0 ? R"({"version": 7, "names": ["a", "b"]})" : "stale";
  world.BroadcastBytes(json, 0);
  EXPECT_EQ(json, R"({"version": 7, "names": ["a", "b"]})");
  std::string empty = world.rank() == 0 ? "" : "not empty";
  world.BroadcastBytes(empty, 0);
  EXPECT_EQ(empty, "");
  world.Barrier();
}

// Even and odd ranks form two groups; key = -rank reverses the order.
TEST(CommunicatorTest, SplitGroupsRanksByColorOrderedByKey) {
  Communicator& world = World();
  const int n = world.size();
  const int color = world.rank() % 2;
  std::unique_ptr<Communicator> group = world.Split(color, -world.rank());
  ASSERT_NE(group, nullptr);
  std::vector<int> members;
  for (int r = n - 1; r >= 0; --r) {
    if (r % 2 == color) members.push_back(r);
  }
  ASSERT_EQ(group->size(), static_cast<int>(members.size()));
  EXPECT_EQ(members[static_cast<size_t>(group->rank())], world.rank());
  torch::Tensor t =
      torch::full({4}, static_cast<double>(world.rank() + 1), torch::kFloat64);
  group->AllReduce(t, ReduceOp::kSum);
  double want = 0;
  for (int r : members) want += r + 1;
  EXPECT_DOUBLE_EQ(t[0].item<double>(), want);

  // A negative color leaves the rank out.
  std::unique_ptr<Communicator> firsts =
      world.Split(world.rank() == 0 ? 0 : -1, 0);
  EXPECT_EQ(firsts != nullptr, world.rank() == 0);
  if (firsts) EXPECT_EQ(firsts->size(), 1);
}

// Checks run before any message is sent, so every rank throws alike and the
// communicator stays in step.
TEST(CommunicatorTest, BadArgumentsAreRejectedWithTheirName) {
  Communicator& world = World();
  const int n = world.size();
  torch::Tensor in = torch::zeros({4 * n});
  torch::Tensor wrong = torch::zeros({4 * n + 1});
  try {
    world.ReduceScatter(in, wrong, ReduceOp::kSum);
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("ReduceScatter"), std::string::npos);
  }
  torch::Tensor strided = torch::zeros({4, 4}).t();
  EXPECT_THROW(world.AllReduce(strided, ReduceOp::kSum), BadRequest);
  torch::Tensor half = torch::zeros({4}, torch::kFloat16);
  try {
    world.AllReduce(half, ReduceOp::kSum);
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("Half"), std::string::npos)
        << e.what();
  }
  torch::Tensor t = torch::zeros({2});
  EXPECT_THROW(world.Broadcast(t, n), BadRequest);
  EXPECT_THROW(MakeCommunicator("gloo", 0), ConfigError);
  world.Barrier();
}

TEST(CommunicatorTest, SingleRankCommunicatorIsTheIdentity) {
  std::unique_ptr<Communicator> one = MakeCommunicator("single", 0);
  EXPECT_EQ(one->size(), 1);
  torch::Tensor t = InputOf(0, 10, torch::kFloat32);
  one->AllReduce(t, ReduceOp::kAvg);
  EXPECT_TRUE(t.equal(InputOf(0, 10, torch::kFloat32)));
  torch::Tensor out = torch::empty({10});
  one->AllGather(t, out);
  EXPECT_TRUE(out.equal(t));
  one->ReduceScatter(t, out, ReduceOp::kSum);
  EXPECT_TRUE(out.equal(t));
  EXPECT_THROW(one->Broadcast(t, 1), BadRequest);
  EXPECT_EQ(one->Split(3, 0)->size(), 1);
}

// The last rank skips an all-reduce on a group communicator; every other rank
// must get a Timeout naming its rank and the op, within the deadline plus a
// margin, instead of hanging. The group is abandoned afterwards (its pending
// request can never complete), and the world communicator carries on.
TEST(CommunicatorTest, ASkippedCollectiveTimesOutNamingRankAndOp) {
  Communicator& world = World();
  if (world.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  auto* mpi_world = dynamic_cast<MpiCommunicator*>(&world);
  ASSERT_NE(mpi_world, nullptr);
  MPI_Comm dup = MPI_COMM_NULL;
  ASSERT_EQ(MPI_Comm_dup(mpi_world->comm(), &dup), MPI_SUCCESS);
  // Leaked on purpose: the timed-out group must outlive the test.
  auto* group = new MpiCommunicator(dup, 300);
  if (world.rank() != world.size() - 1) {
    torch::Tensor t = torch::ones({16});
    const auto start = std::chrono::steady_clock::now();
    try {
      group->AllReduce(t, ReduceOp::kSum);
      ADD_FAILURE() << "expected a Timeout";
    } catch (const Timeout& e) {
      const double seconds = std::chrono::duration<double>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
      const std::string message = e.what();
      EXPECT_NE(message.find(
                    fmt::format("rank {} of {}", world.rank(), world.size())),
                std::string::npos)
          << message;
      EXPECT_NE(message.find("AllReduce"), std::string::npos) << message;
      EXPECT_NE(message.find("64 bytes"), std::string::npos) << message;
      EXPECT_GE(seconds, 0.3);
      EXPECT_LT(seconds, 5.0);
    }
    // Unusable afterwards, with a message that says why.
    EXPECT_THROW(group->Barrier(), InternalError);
  }
  world.Barrier();
}

}  // namespace
}  // namespace clinrl::distributed
