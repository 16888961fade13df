// CRC-32C (Castagnoli), used to detect torn or corrupted files: checkpoint
// manifests and TensorBoard's TFRecord framing (which stores it "masked").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace clinrl {

// Extends `crc` (0 for a fresh checksum) over `size` bytes.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t Crc32c(std::string_view bytes, uint32_t crc = 0) {
  return Crc32c(bytes.data(), bytes.size(), crc);
}

// TFRecord's masking: rotate right by 15 and add a constant, so that a CRC
// of data that itself contains CRCs does not degenerate.
inline uint32_t MaskCrc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace clinrl
