/* A small generic layer over the onnxruntime C API (OrtGetApiBase()->GetApi(ORT_API_VERSION)):
 * sessions, tensors, IOBinding and run, nothing model-specific. ort_jni.c exposes it to the JVM;
 * it is plain C so that it can be tested without a JVM (test_ort_bridge.c, under AddressSanitizer).
 *
 * Errors: every function that can fail returns NULL on success, else a malloc'd one-line message
 * "<what was being done>: <onnxruntime's message>" that the caller frees with ob_free(). Outputs
 * are written only on success.
 *
 * Handles: a tensor is an OrtValue* (released with ob_tensor_release); sessions and bindings are
 * the opaque types below. One process-wide OrtEnv is created on first use and lives until exit.
 * Objects are not thread-safe: one thread at a time per session, binding or tensor (different
 * sessions may run concurrently, as onnxruntime allows). */
#ifndef QWEN_ASR_ORT_BRIDGE_H
#define QWEN_ASR_ORT_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "onnxruntime_c_api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ob_session ob_session;
typedef struct ob_binding ob_binding;

/* An execution provider by name ("XNNPACK", "NNAPI", or any name that onnxruntime's generic
 * SessionOptionsAppendExecutionProvider knows, e.g. "QNN"; "CPU" adds nothing) and its options.
 * NNAPI's options are flags: "use_fp16", "use_nchw", "cpu_disabled", "cpu_only" = "1"/"0". */
typedef struct {
  const char *name;
  const char *const *keys;
  const char *const *values;
  size_t count;
} ob_provider;

typedef struct {
  int intra_op_threads;   /* 0: onnxruntime's default */
  int optimization_level; /* 0 (none), 1 (basic), 2 (extended), 99 (all) */
  const char *const *config_keys; /* AddSessionConfigEntry, in order */
  const char *const *config_values;
  size_t config_count;
  const ob_provider *providers; /* appended in this order, before the CPU provider */
  size_t provider_count;
} ob_session_options;

void ob_free(void *p);

/* onnxruntime's version string (static). */
const char *ob_version(void);
/* The providers this library has (GetAvailableProviders), e.g. "CPUExecutionProvider"; free the
 * array with ob_free_strings. */
char *ob_available_providers(char ***names, size_t *count);
void ob_free_strings(char **names, size_t count);

/* Byte size of one element of an ONNX tensor type (1 float, 7 int64, ...); 0 for types without a
 * fixed size (string) or unknown types. */
size_t ob_element_size(int onnx_type);

/* Sessions. From bytes, the caller keeps data alive and unchanged until ob_session_close (needed
 * when the config has session.use_ort_model_bytes_directly=1; harmless otherwise). */
char *ob_session_open_path(const char *path, const ob_session_options *options, ob_session **out);
char *ob_session_open_bytes(const void *data, size_t length, const ob_session_options *options,
                            ob_session **out);
size_t ob_session_input_count(const ob_session *session);
const char *ob_session_input_name(const ob_session *session, size_t i);
size_t ob_session_output_count(const ob_session *session);
const char *ob_session_output_name(const ob_session *session, size_t i);
void ob_session_close(ob_session *session);

/* Runs with the given inputs and fills outputs[0..output_count) with new tensors (onnxruntime
 * allocates them; the caller releases each). */
char *ob_session_run(ob_session *session, const char *const *input_names, const OrtValue *const *inputs,
                     size_t input_count, const char *const *output_names, size_t output_count,
                     OrtValue **outputs);

/* Tensors. wrap: no copy; data (bytes long, exactly element count x element size) must outlive
 * the tensor and every binding or run that uses it. allocate: onnxruntime's CPU allocator,
 * contents uninitialised. rank 0 is a scalar (shape may be NULL). */
char *ob_tensor_wrap(void *data, size_t bytes, int onnx_type, const int64_t *shape, size_t rank,
                     OrtValue **out);
char *ob_tensor_allocate(int onnx_type, const int64_t *shape, size_t rank, OrtValue **out);
/* Type and rank; shape is written when shape_capacity >= rank. */
char *ob_tensor_info(const OrtValue *tensor, int *onnx_type, size_t *rank, int64_t *shape,
                     size_t shape_capacity);
/* The tensor's own memory and its size in bytes (data may be NULL when bytes is 0). */
char *ob_tensor_data(OrtValue *tensor, void **data, size_t *bytes);
void ob_tensor_release(OrtValue *tensor);

/* IOBinding. Bound values are referenced by the binding (onnxruntime keeps its own OrtValue), but
 * wrapped memory must stay alive while bound. The same tensor may be bound as an input and an
 * output (a KV cache updated in place by a graph whose op writes its output over its input). */
char *ob_binding_create(ob_session *session, ob_binding **out);
char *ob_binding_bind_input(ob_binding *binding, const char *name, const OrtValue *tensor);
char *ob_binding_bind_output(ob_binding *binding, const char *name, const OrtValue *tensor);
/* onnxruntime allocates the output on the CPU at each run. */
char *ob_binding_bind_output_cpu(ob_binding *binding, const char *name);
char *ob_binding_run(ob_binding *binding);
/* The bound outputs after a run: names (free with ob_free_strings) and new tensors (release each,
 * then ob_free the array). count is 0 (and the arrays NULL) when nothing is bound. */
char *ob_binding_outputs(ob_binding *binding, char ***names, OrtValue ***values, size_t *count);
void ob_binding_clear_inputs(ob_binding *binding);
void ob_binding_clear_outputs(ob_binding *binding);
void ob_binding_release(ob_binding *binding);

#ifdef __cplusplus
}
#endif
#endif
