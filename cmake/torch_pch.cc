// Anchor translation unit for the shared <torch/torch.h> precompiled header.
namespace clinrl {
int TorchPchAnchor() { return 0; }
}  // namespace clinrl
