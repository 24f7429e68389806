// The Winograd F(m x m, 3x3) transform matrices and the input/output transforms of one strip of
// tiles, written once over a lane count and compiled per ISA (kernels/ref/winograd_f32_ref.cpp,
// kernels/x86/*/winograd_f32_*.cpp, each with its own flags): every inner loop runs over the
// strip's lanes (tiles), contiguous in memory, so the compiler turns it into vector code of the
// file's ISA, and the matrix loops are unrolled against constant coefficients, so zero
// coefficients cost nothing and ±1 ones no multiplication.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/winograd_f32.h"

namespace nibble::kernels::winograd {

// Interpolation points 0, ±1, ±2 (F(4x4)), plus ±1/2 (F(6x6)), and infinity (wincnn's choice).
template <int Tile>
struct Matrices;

template <>
struct Matrices<2> {
  static constexpr int kAlpha = 4;
  static constexpr double BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

template <>
struct Matrices<4> {
  static constexpr int kAlpha = 6;
  static constexpr double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                      {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                      {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr double AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

template <>
struct Matrices<6> {
  static constexpr int kAlpha = 8;
  static constexpr double BT[8][8] = {
      {1, 0, -21.0 / 4, 0, 21.0 / 4, 0, -1, 0},
      {0, 1, 1, -17.0 / 4, -17.0 / 4, 1, 1, 0},
      {0, -1, 1, 17.0 / 4, -17.0 / 4, -1, 1, 0},
      {0, 1.0 / 2, 1.0 / 4, -5.0 / 2, -5.0 / 4, 2, 1, 0},
      {0, -1.0 / 2, 1.0 / 4, 5.0 / 2, -5.0 / 4, -2, 1, 0},
      {0, 2, 4, -5.0 / 2, -5, 1.0 / 2, 1, 0},
      {0, -2, 4, 5.0 / 2, -5, -1.0 / 2, 1, 0},
      {0, -1, 0, 21.0 / 4, 0, -21.0 / 4, 0, 1}};
  static constexpr double G[8][3] = {{1, 0, 0},
                                     {-2.0 / 9, -2.0 / 9, -2.0 / 9},
                                     {-2.0 / 9, 2.0 / 9, -2.0 / 9},
                                     {1.0 / 90, 1.0 / 45, 2.0 / 45},
                                     {1.0 / 90, -1.0 / 45, 2.0 / 45},
                                     {32.0 / 45, 16.0 / 45, 8.0 / 45},
                                     {32.0 / 45, -16.0 / 45, 8.0 / 45},
                                     {0, 0, 1}};
  static constexpr double AT[6][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 2, -2, 1.0 / 2, -1.0 / 2, 0},
                                      {0, 1, 1, 4, 4, 1.0 / 4, 1.0 / 4, 0},
                                      {0, 1, -1, 8, -8, 1.0 / 8, -1.0 / 8, 0},
                                      {0, 1, 1, 16, 16, 1.0 / 16, 1.0 / 16, 0},
                                      {0, 1, -1, 32, -32, 1.0 / 32, -1.0 / 32, 1}};
};

// out[l] = Σ_j coef[j] · in[j * stride + l] over the lanes, skipping zero coefficients (all
// constant after unrolling).
template <int N, int64_t Lanes>
inline __attribute__((always_inline)) void combine(const double (&coef)[N], const float* in,
                                                   int64_t stride, float* out) {
  float acc[Lanes] = {};
#pragma GCC unroll 8
  for (int j = 0; j < N; ++j) {
    if (coef[j] == 0) continue;
    const float c = static_cast<float>(coef[j]);
#pragma GCC unroll 32
    for (int64_t l = 0; l < Lanes; ++l) acc[l] += c * in[j * stride + l];
  }
  std::memcpy(out, acc, sizeof(acc));
}

// V = Bᵀ d B for each lane's a x a window: along the rows of d first, then down the columns.
// The plane is phase-split (winograd_f32.h): window column j of the tile at column q of a row
// is element q + j / Tile of the row's phase j % Tile, so every column of a run of tiles is a
// contiguous run of floats, copied with CopyLanes::copy(dst, src, n) (the ISA's vector copy,
// which may read and write up to CopyLanes::kOverrun floats past n: the plane has that much
// slack at its end, and d's rows too; runs are copied in lane order, so what one run writes
// past its end the next run overwrites).
template <int Tile, int64_t Lanes, class CopyLanes>
void input_strip(const float* plane, int64_t pitch, const WinogradRun* runs, int64_t num_runs,
                 float* v, int64_t point_stride) {
  using Mx = Matrices<Tile>;
  constexpr int A = Mx::kAlpha;
  const int64_t phase_stride = pitch / Tile;
  alignas(64) float d[A][A][Lanes + CopyLanes::kOverrun];  // row i, column j of every window
  int64_t covered = 0;
  for (int64_t r = 0; r < num_runs; ++r) {
    const WinogradRun& run = runs[r];
    for (int i = 0; i < A; ++i) {
      const float* row = plane + run.origin + i * pitch;
#pragma GCC unroll 8
      for (int j = 0; j < A; ++j) {
        CopyLanes::copy(&d[i][j][run.lane], row + (j % Tile) * phase_stride + j / Tile, run.count);
      }
    }
    covered += run.count;
  }
  if (covered < Lanes) {  // the image's last strip: tiles past the end read zeros
    for (int i = 0; i < A; ++i) {
      for (int j = 0; j < A; ++j) {
        std::memset(&d[i][j][covered], 0, sizeof(float) * static_cast<size_t>(Lanes - covered));
      }
    }
  }
  // Column b of Bᵀ d (t[i] = Bᵀ along row i, output b) stays in registers while it is
  // transformed down the rows into points (a, b).
#pragma GCC unroll 8
  for (int b = 0; b < A; ++b) {
    alignas(64) float t[A][Lanes];
#pragma GCC unroll 8
    for (int i = 0; i < A; ++i) {
      combine<A, Lanes>(Mx::BT[b], d[i][0], Lanes + CopyLanes::kOverrun, t[i]);
    }
#pragma GCC unroll 8
    for (int a = 0; a < A; ++a) {
      combine<A, Lanes>(Mx::BT[a], t[0], Lanes, v + (a * A + b) * point_stride);
    }
  }
}

// Y = Aᵀ M A + bias for each lane's tile, written as `Tile` image rows of the strip's tiles side
// by side: pixel (r, c) of lane l at out[r * Lanes * Tile + l * Tile + c] (vector permutes).
template <int Tile, int64_t Lanes>
void output_strip(const float* m, int64_t point_stride, float bias, float* out) {
  using Mx = Matrices<Tile>;
  constexpr int A = Mx::kAlpha;
  alignas(64) float s[Tile][A][Lanes];  // s[c][i]: Aᵀ applied along row i of M, output c
#pragma GCC unroll 8
  for (int i = 0; i < A; ++i) {
#pragma GCC unroll 8
    for (int c = 0; c < Tile; ++c) {
      combine<A, Lanes>(Mx::AT[c], m + i * A * point_stride, point_stride, s[c][i]);
    }
  }
  for (int r = 0; r < Tile; ++r) {
    alignas(64) float y[Tile][Lanes];
#pragma GCC unroll 8
    for (int c = 0; c < Tile; ++c) combine<A, Lanes>(Mx::AT[r], s[c][0], Lanes, y[c]);
    float* row = out + r * Lanes * Tile;
    for (int64_t l = 0; l < Lanes; ++l) {
#pragma GCC unroll 8
      for (int c = 0; c < Tile; ++c) row[l * Tile + c] = y[c][l] + bias;
    }
  }
}

}  // namespace nibble::kernels::winograd

// Defines namespace `ns`'s winograd_f32_input / winograd_f32_output for every tile with strips
// of `lanes` tiles (the ISA's GEMM NR) and the ISA's lane copy (a class with
// static void copy(float* dst, const float* src, int64_t n), n <= lanes, and its kOverrun).
#define NIBBLE_WINOGRAD_DEFINE(ns, lanes, copy_lanes)                                                        \
  namespace nibble::kernels::ns {                                                                \
  template <int Tile>                                                                            \
  void winograd_f32_input(const float* plane, int64_t pitch, const WinogradRun* runs,            \
                          int64_t num_runs, float* v, int64_t point_stride) {                    \
    winograd::input_strip<Tile, lanes, copy_lanes>(plane, pitch, runs, num_runs, v, point_stride); \
  }                                                                                              \
  template <int Tile>                                                                            \
  void winograd_f32_output(const float* m, int64_t point_stride, float bias, float* out) {       \
    winograd::output_strip<Tile, lanes>(m, point_stride, bias, out);                             \
  }                                                                                              \
  template void winograd_f32_input<2>(const float*, int64_t, const WinogradRun*, int64_t, float*, \
                                      int64_t);                                                  \
  template void winograd_f32_input<4>(const float*, int64_t, const WinogradRun*, int64_t, float*, \
                                      int64_t);                                                  \
  template void winograd_f32_input<6>(const float*, int64_t, const WinogradRun*, int64_t, float*, \
                                      int64_t);                                                  \
  template void winograd_f32_output<2>(const float*, int64_t, float, float*);                    \
  template void winograd_f32_output<4>(const float*, int64_t, float, float*);                    \
  template void winograd_f32_output<6>(const float*, int64_t, float, float*);                    \
  }
