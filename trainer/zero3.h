// ZeRO stage 3 (FSDP's full sharding): each data-parallel rank keeps 1/N of
// the parameters, of their gradients and of AdamW's moments. The model is cut
// into units, one per decoder layer plus a root unit (embeddings, final norm,
// output head), each laid out as one flat vector padded to a multiple of N
// (FlatParameterLayout); rank r owns the slice [r * S, (r + 1) * S) of every
// unit.
//
// A decoder layer's weights exist only while the layer computes: the model
// calls Gather(i) just before layer i (policy::LayerWeightHooks), which
// all-gathers the unit and points the layer's parameters into the gathered
// buffer, and Release(i) right after, which points them at empty tensors
// again. Backward recomputes the layer (the weights are gone by then): a
// second gather, then GradientsReady(i) reduce-scatters the layer's
// gradients into this rank's gradient shard and frees them and the weights.
// The root unit is gathered for a whole step, as FSDP keeps its root.
//
// The update is AdamW's (adamw.h) on the owned slices, element for element,
// so N ranks reproduce one rank up to float32 summation order. Every rank
// must make the same calls in the same order (each is collective): the
// PolicyTrainer pads ranks with fewer micro-batches with empty passes.
// Communicator's collectives are blocking, so the gather of layer i+1 does
// not overlap layer i's compute (docs/distributed.md, "ZeRO-3").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "distributed/communicator.h"
#include "policy/transformer.h"
#include "trainer/adamw.h"
#include "trainer/sharded_adamw.h"

namespace clinrl::trainer {

struct Zero3Gradients {
  double norm = 0.0;        // L2 norm of the whole summed gradient
  bool loss_finite = true;  // every rank's share of the loss was finite
};

class Zero3 : public policy::LayerWeightHooks {
 public:
  // Shards `model`'s trainable parameters (every parameter: LoRA is not
  // sharded) and frees the full ones: afterwards the model's parameters are
  // empty until gathered. `comm` is the data-parallel group; both must
  // outlive this object, which installs itself as the model's hooks.
  // Gradients are reduce-scattered in `reduce_dtype` in buckets of at most
  // `bucket_bytes`.
  Zero3(policy::Transformer model, AdamWOptions options,
        distributed::Communicator& comm, int64_t bucket_bytes,
        torch::ScalarType reduce_dtype);
  ~Zero3() override;
  Zero3(const Zero3&) = delete;
  Zero3& operator=(const Zero3&) = delete;

  // policy::LayerWeightHooks, called by the model.
  void Gather(int64_t layer) override;
  void Release(int64_t layer) override;
  void GradientsReady(int64_t layer) override;

  // The root unit, gathered from the start of a step to its end (and again
  // after each update of a step of several epochs). GatherRoot of a
  // gathered root does nothing.
  void GatherRoot();
  void ReleaseRoot();

  // After the step's backward passes: reduce-scatters the root's gradients
  // (the layers' went as the backward went), then one small all-reduce gives
  // the global gradient norm, which parameters had a gradient on any rank,
  // and whether any rank's loss was non-finite.
  Zero3Gradients FinishGradients(bool local_loss_finite);
  // AdamW on the owned slices, gradients scaled by `grad_scale` (clipping);
  // a parameter without a gradient on any rank is left alone. A gathered
  // root is released, not gathered again: its weights are the old ones, and
  // only another pass over the same batch needs the new (GatherRoot).
  void Step(double lr, double grad_scale);
  void DropGradients();
  int64_t step() const { return step_; }

  // The first parameter (in unit order) with a non-finite element on any
  // rank, "" if none. Collective.
  std::string FirstNonFiniteParameter();

  // Unit by unit (layers first, then the root): gathers the unit, calls
  // `fn` with its parameters (full, Hugging Face names), and releases it, so
  // at most one unit beyond the root is whole at a time. Collective; `fn`
  // runs on every rank.
  void ForEachGatheredUnit(
      const std::function<void(const std::vector<std::string>& names,
                               const std::vector<torch::Tensor>& params)>& fn);

  // Bytes this rank holds for parameters, gradients and moments (its shards).
  int64_t ShardBytes() const;
  // Bytes of AdamW's moments alone.
  int64_t StateBytes() const;
  // Parameter elements of the whole model (unpadded).
  int64_t numel() const;
  // Most elements gathered at once so far (padded units).
  int64_t peak_gathered_numel() const { return peak_gathered_; }
  // Bytes this rank sent into all-gathers and reduce-scatters so far (its
  // input of each collective, the NCCL convention: the volume per rank).
  int64_t communicated_bytes() const { return communicated_bytes_; }
  int64_t gathers() const { return gathers_; }
  // Parameter elements of the root unit (embeddings, final norm, head).
  int64_t root_numel() const;

  // Checkpoints. Every rank writes its slices as
  // zero3.shard-RRRRR-of-NNNNN.safetensors into `dir` (per unit: param,
  // exp_avg, exp_avg_sq); rank 0 also writes zero3_layout.json (ranks,
  // units with their parameter names and sizes, step).
  void SaveShards(const std::string& dir) const;
  // Restores parameters and moments from a checkpoint written with any
  // number of ranks: each rank reads the byte ranges of the old slices that
  // overlap its new ones. Throws BadRequest naming a parameter whose name or
  // size differs, or a missing file.
  void LoadShards(const std::string& dir);
  // Restores the moments from AdamW::StateTensors() names (a one-process
  // checkpoint).
  void LoadFullState(const std::map<std::string, torch::Tensor>& state,
                     int64_t step);

 private:
  struct Unit {
    FlatParameterLayout layout;
    // Each parameter's shape and size (its tensor is empty while released).
    std::vector<std::vector<int64_t>> shapes;
    std::vector<int64_t> numels;
    torch::Tensor param, grad, exp_avg, exp_avg_sq;  // [shard_size] each
    std::vector<bool> has_grad;  // this rank's, until FinishGradients
    bool gathered = false;
    explicit Unit(FlatParameterLayout l) : layout(std::move(l)) {}
  };
  Unit& root() { return units_.back(); }
  void GatherUnit(Unit& unit);
  void ReleaseUnit(Unit& unit);
  void ReduceUnitGradients(Unit& unit);
  // The overlap of parameter i of `unit` with this rank's slice, as
  // [first, last) flat indices of the unit.
  std::pair<int64_t, int64_t> Owned(const Unit& unit, size_t i) const;

  policy::Transformer model_;
  AdamWOptions options_;
  distributed::Communicator& comm_;
  int64_t bucket_bytes_;
  torch::ScalarType reduce_dtype_;
  std::vector<Unit> units_;  // decoder layers in order, then the root
  int64_t step_ = 0;
  int64_t gathered_ = 0, peak_gathered_ = 0;
  int64_t communicated_bytes_ = 0, gathers_ = 0;
};

}  // namespace clinrl::trainer
