// scripts/ktrace/ktrace.c — CUPTI injection library for profiling kvant on a GPU machine without Nsight
// Systems: records every kernel execution (inside CUDA graphs too) and writes one line per kernel to
// $KTRACE_OUT at exit: start_ns end_ns graph_id graph_node_id stream grid_x block_x mangled_name.
// Built and used by scripts/ktrace/run.sh (CUDA_INJECTION64_PATH); not part of the kvant build.
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>

static FILE* g_out;
enum { kBufferBytes = 8u << 20 };

static void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = (uint8_t*)aligned_alloc(8, kBufferBytes);
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t size, size_t valid) {
  (void)ctx, (void)stream, (void)size;
  CUpti_Activity* record = NULL;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const CUpti_ActivityKernel10* k = (const CUpti_ActivityKernel10*)record;
    if (g_out)
      fprintf(g_out, "%llu %llu %u %llu %u %d %d %s\n", (unsigned long long)k->start, (unsigned long long)k->end,
              k->graphId, (unsigned long long)k->graphNodeId, k->streamId, k->gridX, k->blockX, k->name);
  }
  free(buffer);
}

static void flush_at_exit(void) {
  cuptiActivityFlushAll(1);
  if (g_out) fclose(g_out);
  g_out = NULL;
}

int InitializeInjection(void) {
  const char* path = getenv("KTRACE_OUT");
  g_out = fopen(path ? path : "ktrace.txt", "w");
  if (!g_out) {
    fprintf(stderr, "ktrace: cannot write %s\n", path ? path : "ktrace.txt");
    return 0;
  }
  CUptiResult r = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
  if (r == CUPTI_SUCCESS) r = cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  if (r != CUPTI_SUCCESS) {
    const char* what = NULL;
    cuptiGetResultString(r, &what);
    fprintf(stderr, "ktrace: CUPTI activity tracing unavailable: %s\n", what ? what : "unknown error");
    return 0;
  }
  atexit(flush_at_exit);
  return 1;
}
