/* A stand-in for the CUDA driver (libcuda.so.1) that reports one device and nothing else, for
 * tests/cli/entry_point_test.cpp: with it on LD_LIBRARY_PATH the light binary sees "a GPU" and must hand
 * `--device auto` to the full binary, whose CUDA runtime then finds no usable driver and falls back to the CPU. */
int cuInit(unsigned int flags) {
  (void)flags;
  return 0;
}
int cuDeviceGetCount(int* count) {
  *count = 1;
  return 0;
}
