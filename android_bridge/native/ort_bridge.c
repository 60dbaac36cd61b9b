/* See ort_bridge.h. */
#define _GNU_SOURCE
#include "ort_bridge.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ob_session {
  OrtSession *session;
  char *label; /* the model's path, or "model bytes": named in error messages */
  char **inputs;
  size_t input_count;
  char **outputs;
  size_t output_count;
};

struct ob_binding {
  OrtIoBinding *binding;
  ob_session *session;
};

static const OrtApi *ort;
static OrtEnv *env;
static OrtMemoryInfo *cpu_memory;
static OrtAllocator *allocator;
static char *init_error;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static char *vformat(const char *fmt, va_list ap) {
  char small[256];
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (s == NULL) return NULL;
  if ((size_t)n < sizeof small) memcpy(s, small, (size_t)n + 1);
  else vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

/* A malloc'd message, never NULL. */
static char *errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vformat(fmt, ap);
  va_end(ap);
  if (s == NULL) s = strdup("out of memory");
  if (s == NULL) abort();
  return s;
}

/* onnxruntime's message on one line, without trailing blanks (a new string). */
static char *one_line(const char *message) {
  char *s = errorf("%s", message ? message : "(no message)");
  for (char *p = s; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == ' ') s[--n] = '\0';
  return s;
}

/* "<what>: <onnxruntime's message>"; releases status. */
static char *status_error(OrtStatus *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *status_error(OrtStatus *status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *what = vformat(fmt, ap);
  va_end(ap);
  char *message = one_line(ort->GetErrorMessage(status));
  char *s = errorf("%s: %s", what ? what : "onnxruntime failed", message);
  free(what);
  free(message);
  ort->ReleaseStatus(status);
  return s;
}

static void init(void) {
  const OrtApiBase *base = OrtGetApiBase();
  ort = base ? base->GetApi(ORT_API_VERSION) : NULL;
  if (ort == NULL) {
    init_error = errorf("onnxruntime %s does not offer C API version %d (this library was built "
                        "against newer headers than the runtime)",
                        base ? base->GetVersionString() : "?", ORT_API_VERSION);
    return;
  }
  /* onnxruntime's own log (stderr; logcat on Android): warnings and up, or the level 0 (verbose)
   * to 4 (fatal only) in QWENASR_ORT_LOG_LEVEL. Errors reach the caller as messages anyway. */
  OrtLoggingLevel level = ORT_LOGGING_LEVEL_WARNING;
  const char *wanted = getenv("QWENASR_ORT_LOG_LEVEL");
  if (wanted && wanted[0] >= '0' && wanted[0] <= '4' && wanted[1] == '\0') level = (OrtLoggingLevel)(wanted[0] - '0');
  OrtStatus *st = ort->CreateEnv(level, "qwen-asr-edge", &env);
  if (st == NULL) st = ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &cpu_memory);
  if (st == NULL) st = ort->GetAllocatorWithDefaultOptions(&allocator);
  if (st != NULL) init_error = status_error(st, "cannot initialise onnxruntime");
}

/* NULL when onnxruntime is usable, else a new copy of why not. */
static char *ready(void) {
  pthread_once(&init_once, init);
  return init_error ? errorf("%s", init_error) : NULL;
}

void ob_free(void *p) { free(p); }

const char *ob_version(void) {
  const OrtApiBase *base = OrtGetApiBase();
  return base ? base->GetVersionString() : "unknown";
}

void ob_free_strings(char **names, size_t count) {
  if (names == NULL) return;
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
}

char *ob_available_providers(char ***names, size_t *count) {
  char *err = ready();
  if (err) return err;
  char **list = NULL;
  int n = 0;
  OrtStatus *st = ort->GetAvailableProviders(&list, &n);
  if (st) return status_error(st, "cannot list onnxruntime's execution providers");
  char **copy = calloc(n > 0 ? (size_t)n : 1, sizeof *copy);
  for (int i = 0; copy && i < n; i++) {
    copy[i] = strdup(list[i]);
    if (copy[i] == NULL) {
      ob_free_strings(copy, (size_t)i);
      copy = NULL;
    }
  }
  st = ort->ReleaseAvailableProviders(list, n);
  if (st) ort->ReleaseStatus(st);
  if (copy == NULL) return errorf("out of memory listing execution providers");
  *names = copy;
  *count = (size_t)n;
  return NULL;
}

size_t ob_element_size(int type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return 2;
    default: return 0;
  }
}

/* ---- execution providers ---- */

/* A symbol of the onnxruntime library this code is linked against: looked up in that library
 * first (it may have been loaded RTLD_LOCAL, as Android's System.loadLibrary does), then
 * globally. */
static void *ort_symbol(const char *name) {
  void *sym = NULL;
  Dl_info info;
  if (dladdr((void *)&OrtGetApiBase, &info) && info.dli_fname) {
    void *lib = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (lib) {
      sym = dlsym(lib, name);
      dlclose(lib);
    }
  }
  if (sym == NULL) sym = dlsym(RTLD_DEFAULT, name);
  return sym;
}

/* onnxruntime's provider id for a short name, e.g. XNNPACK -> XnnpackExecutionProvider. */
static const char *provider_id(const char *name) {
  static const char *const ids[][2] = {
      {"XNNPACK", "XnnpackExecutionProvider"}, {"NNAPI", "NnapiExecutionProvider"},
      {"QNN", "QNNExecutionProvider"},         {"CoreML", "CoreMLExecutionProvider"},
      {"SNPE", "SNPEExecutionProvider"},       {"OpenVINO", "OpenVINOExecutionProvider"},
      {"WEBNN", "WebNNExecutionProvider"},     {"AZURE", "AzureExecutionProvider"},
  };
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    if (strcmp(ids[i][0], name) == 0) return ids[i][1];
  return NULL;
}

static int provider_available(const char *id) {
  char **names = NULL;
  size_t n = 0;
  char *err = ob_available_providers(&names, &n);
  if (err) {
    free(err);
    return 1; /* unknown: do not claim it is missing */
  }
  int found = 0;
  for (size_t i = 0; i < n; i++) found |= strcmp(names[i], id) == 0;
  ob_free_strings(names, n);
  return found;
}

typedef OrtStatus *(*nnapi_append_fn)(OrtSessionOptions *, uint32_t);

static char *append_nnapi(OrtSessionOptions *so, const ob_provider *p) {
  static const char *const flag_names[] = {"use_fp16", "use_nchw", "cpu_disabled", "cpu_only"};
  uint32_t flags = 0;
  for (size_t i = 0; i < p->count; i++) {
    size_t f = 0;
    while (f < 4 && strcmp(flag_names[f], p->keys[i]) != 0) f++;
    if (f == 4)
      return errorf("unknown NNAPI option '%s' (known: use_fp16, use_nchw, cpu_disabled, cpu_only)",
                    p->keys[i]);
    if (strcmp(p->values[i], "1") == 0 || strcmp(p->values[i], "true") == 0)
      flags |= 1u << f; /* NNAPI_FLAG_USE_FP16 = 0x1, USE_NCHW = 0x2, CPU_DISABLED = 0x4, CPU_ONLY = 0x8 */
    else if (strcmp(p->values[i], "0") != 0 && strcmp(p->values[i], "false") != 0)
      return errorf("NNAPI option %s=%s: expected 1 or 0", p->keys[i], p->values[i]);
  }
  nnapi_append_fn append = (nnapi_append_fn)ort_symbol("OrtSessionOptionsAppendExecutionProvider_Nnapi");
  if (append == NULL)
    return errorf("NNAPI is not in this onnxruntime library (it has no "
                  "OrtSessionOptionsAppendExecutionProvider_Nnapi; only Android builds have NNAPI)");
  OrtStatus *st = append(so, flags);
  return st ? status_error(st, "cannot add execution provider NNAPI") : NULL;
}

static char *append_provider(OrtSessionOptions *so, const ob_provider *p) {
  if (p->name == NULL || p->name[0] == '\0') return errorf("an execution provider has no name");
  if (strcmp(p->name, "CPU") == 0) return NULL; /* always there, last */
  if (strcmp(p->name, "NNAPI") == 0) return append_nnapi(so, p);
  OrtStatus *st = ort->SessionOptionsAppendExecutionProvider(so, p->name, (const char *const *)p->keys,
                                                             (const char *const *)p->values, p->count);
  if (st == NULL) return NULL;
  const char *id = provider_id(p->name);
  if (id != NULL && !provider_available(id)) {
    char *message = one_line(ort->GetErrorMessage(st));
    char *err = errorf("%s is not in this onnxruntime library (%s)", p->name, message);
    free(message);
    ort->ReleaseStatus(st);
    return err;
  }
  return status_error(st, "cannot add execution provider %s", p->name);
}

/* ---- sessions ---- */

static char *make_options(const ob_session_options *o, OrtSessionOptions **out) {
  static const ob_session_options defaults = {0, 99, NULL, NULL, 0, NULL, 0};
  if (o == NULL) o = &defaults;
  if (o->intra_op_threads < 0) return errorf("intra-op threads must be >= 0, not %d", o->intra_op_threads);
  int level = o->optimization_level;
  if (level != ORT_DISABLE_ALL && level != ORT_ENABLE_BASIC && level != ORT_ENABLE_EXTENDED &&
      level != ORT_ENABLE_ALL)
    return errorf("graph optimization level must be 0, 1, 2 or 99, not %d", level);
  OrtSessionOptions *so = NULL;
  OrtStatus *st = ort->CreateSessionOptions(&so);
  if (st) return status_error(st, "cannot create session options");
  char *err = NULL;
  if (o->intra_op_threads > 0 && (st = ort->SetIntraOpNumThreads(so, o->intra_op_threads)) != NULL)
    err = status_error(st, "cannot set %d intra-op threads", o->intra_op_threads);
  if (!err && (st = ort->SetSessionGraphOptimizationLevel(so, (GraphOptimizationLevel)level)) != NULL)
    err = status_error(st, "cannot set graph optimization level %d", level);
  for (size_t i = 0; !err && i < o->config_count; i++)
    if ((st = ort->AddSessionConfigEntry(so, o->config_keys[i], o->config_values[i])) != NULL)
      err = status_error(st, "cannot set session config %s=%s", o->config_keys[i], o->config_values[i]);
  for (size_t i = 0; !err && i < o->provider_count; i++) err = append_provider(so, &o->providers[i]);
  if (err) {
    ort->ReleaseSessionOptions(so);
    return err;
  }
  *out = so;
  return NULL;
}

typedef OrtStatus *(*name_getter)(const OrtSession *, size_t, OrtAllocator *, char **);
typedef OrtStatus *(*count_getter)(const OrtSession *, size_t *);

static char *read_names(ob_session *s, count_getter count_of, name_getter name_of, const char *kind,
                        char ***names, size_t *count) {
  size_t n = 0;
  OrtStatus *st = count_of(s->session, &n);
  if (st) return status_error(st, "cannot read the %s of %s", kind, s->label);
  char **list = calloc(n ? n : 1, sizeof *list);
  if (list == NULL) return errorf("out of memory reading the %s of %s", kind, s->label);
  for (size_t i = 0; i < n; i++) {
    char *name = NULL;
    if ((st = name_of(s->session, i, allocator, &name)) != NULL) {
      ob_free_strings(list, i);
      return status_error(st, "cannot read the %s of %s", kind, s->label);
    }
    list[i] = strdup(name);
    st = ort->AllocatorFree(allocator, name);
    if (st) ort->ReleaseStatus(st);
    if (list[i] == NULL) {
      ob_free_strings(list, i);
      return errorf("out of memory reading the %s of %s", kind, s->label);
    }
  }
  *names = list;
  *count = n;
  return NULL;
}

static char *open_session(const char *path, const void *data, size_t length, const ob_session_options *o,
                          ob_session **out) {
  char *err = ready();
  if (err) return err;
  if (path == NULL && (data == NULL || length == 0)) return errorf("cannot open model bytes: the buffer is empty");
  if (path != NULL) {
    /* onnxruntime says "Invalid fd was supplied: -1" for a missing file: say what the system says. */
    FILE *f = fopen(path, "rb");
    if (f == NULL) return errorf("cannot open %s: %s", path, strerror(errno));
    fclose(f);
  }
  OrtSessionOptions *so = NULL;
  if ((err = make_options(o, &so)) != NULL) {
    char *full = errorf("cannot open %s: %s", path ? path : "model bytes", err);
    free(err);
    return full;
  }
  ob_session *s = calloc(1, sizeof *s);
  if (s) s->label = strdup(path ? path : "model bytes");
  if (s == NULL || s->label == NULL) {
    free(s);
    ort->ReleaseSessionOptions(so);
    return errorf("out of memory opening %s", path ? path : "model bytes");
  }
  OrtStatus *st = path ? ort->CreateSession(env, path, so, &s->session)
                       : ort->CreateSessionFromArray(env, data, length, so, &s->session);
  ort->ReleaseSessionOptions(so);
  if (st) err = status_error(st, "cannot open %s", s->label);
  if (!err) err = read_names(s, ort->SessionGetInputCount, ort->SessionGetInputName, "inputs", &s->inputs,
                             &s->input_count);
  if (!err) err = read_names(s, ort->SessionGetOutputCount, ort->SessionGetOutputName, "outputs", &s->outputs,
                             &s->output_count);
  if (err) {
    ob_session_close(s);
    return err;
  }
  *out = s;
  return NULL;
}

char *ob_session_open_path(const char *path, const ob_session_options *options, ob_session **out) {
  if (path == NULL) return errorf("cannot open a model: no path");
  return open_session(path, NULL, 0, options, out);
}

char *ob_session_open_bytes(const void *data, size_t length, const ob_session_options *options,
                            ob_session **out) {
  return open_session(NULL, data, length, options, out);
}

size_t ob_session_input_count(const ob_session *s) { return s->input_count; }
const char *ob_session_input_name(const ob_session *s, size_t i) { return i < s->input_count ? s->inputs[i] : NULL; }
size_t ob_session_output_count(const ob_session *s) { return s->output_count; }
const char *ob_session_output_name(const ob_session *s, size_t i) {
  return i < s->output_count ? s->outputs[i] : NULL;
}

void ob_session_close(ob_session *s) {
  if (s == NULL) return;
  if (s->session) ort->ReleaseSession(s->session);
  ob_free_strings(s->inputs, s->input_count);
  ob_free_strings(s->outputs, s->output_count);
  free(s->label);
  free(s);
}

char *ob_session_run(ob_session *s, const char *const *input_names, const OrtValue *const *inputs,
                     size_t input_count, const char *const *output_names, size_t output_count,
                     OrtValue **outputs) {
  if (output_count == 0) return errorf("cannot run %s: no outputs requested", s->label);
  OrtValue **got = calloc(output_count, sizeof *got);
  if (got == NULL) return errorf("out of memory running %s", s->label);
  OrtStatus *st = ort->Run(s->session, NULL, input_names, inputs, input_count, output_names, output_count, got);
  if (st) {
    for (size_t i = 0; i < output_count; i++)
      if (got[i]) ort->ReleaseValue(got[i]);
    free(got);
    return status_error(st, "cannot run %s", s->label);
  }
  memcpy(outputs, got, output_count * sizeof *got);
  free(got);
  return NULL;
}

/* ---- tensors ---- */

/* Element count of a shape, or an error for a negative or overflowing one. */
static char *element_count(const int64_t *shape, size_t rank, size_t *count) {
  size_t n = 1;
  for (size_t i = 0; i < rank; i++) {
    if (shape[i] < 0) return errorf("tensor dimension %zu is negative (%lld)", i, (long long)shape[i]);
    if (shape[i] != 0 && n > SIZE_MAX / (size_t)shape[i]) return errorf("tensor shape is too large");
    n *= (size_t)shape[i];
  }
  *count = n;
  return NULL;
}

char *ob_tensor_wrap(void *data, size_t bytes, int type, const int64_t *shape, size_t rank, OrtValue **out) {
  char *err = ready();
  if (err) return err;
  size_t size = ob_element_size(type), n = 0;
  if (size == 0) return errorf("cannot wrap a tensor of ONNX type %d (only fixed-size types)", type);
  if ((err = element_count(shape, rank, &n)) != NULL) return err;
  if (n > SIZE_MAX / size || n * size != bytes)
    return errorf("cannot wrap %zu bytes as a tensor of %zu elements of %zu bytes", bytes, n, size);
  OrtStatus *st = ort->CreateTensorWithDataAsOrtValue(cpu_memory, data, bytes, rank ? shape : NULL, rank,
                                                      (ONNXTensorElementDataType)type, out);
  return st ? status_error(st, "cannot wrap a tensor") : NULL;
}

char *ob_tensor_allocate(int type, const int64_t *shape, size_t rank, OrtValue **out) {
  char *err = ready();
  if (err) return err;
  size_t n = 0;
  if (ob_element_size(type) == 0) return errorf("cannot allocate a tensor of ONNX type %d (only fixed-size types)", type);
  if ((err = element_count(shape, rank, &n)) != NULL) return err;
  OrtStatus *st = ort->CreateTensorAsOrtValue(allocator, rank ? shape : NULL, rank, (ONNXTensorElementDataType)type, out);
  return st ? status_error(st, "cannot allocate a tensor") : NULL;
}

char *ob_tensor_info(const OrtValue *tensor, int *type, size_t *rank, int64_t *shape, size_t capacity) {
  char *err = ready();
  if (err) return err;
  int is_tensor = 0;
  OrtStatus *st = ort->IsTensor(tensor, &is_tensor);
  if (st) return status_error(st, "cannot read a tensor");
  if (!is_tensor) return errorf("the value is not a tensor");
  OrtTensorTypeAndShapeInfo *info = NULL;
  if ((st = ort->GetTensorTypeAndShape(tensor, &info)) != NULL) return status_error(st, "cannot read a tensor's shape");
  ONNXTensorElementDataType t = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  size_t r = 0;
  st = ort->GetTensorElementType(info, &t);
  if (!st) st = ort->GetDimensionsCount(info, &r);
  if (!st && shape != NULL && capacity >= r && r > 0) st = ort->GetDimensions(info, shape, r);
  ort->ReleaseTensorTypeAndShapeInfo(info);
  if (st) return status_error(st, "cannot read a tensor's shape");
  *type = (int)t;
  *rank = r;
  return NULL;
}

char *ob_tensor_data(OrtValue *tensor, void **data, size_t *bytes) {
  int type = 0;
  size_t rank = 0;
  char *err = ob_tensor_info(tensor, &type, &rank, NULL, 0);
  if (err) return err;
  int64_t stack_shape[8];
  int64_t *shape = rank <= 8 ? stack_shape : malloc(rank * sizeof *shape);
  if (shape == NULL) return errorf("out of memory reading a tensor");
  err = ob_tensor_info(tensor, &type, &rank, shape, rank);
  size_t n = 0, size = ob_element_size(type);
  if (!err && size == 0) err = errorf("a tensor of ONNX type %d has no fixed-size memory", type);
  if (!err) err = element_count(shape, rank, &n);
  if (shape != stack_shape) free(shape);
  if (err) return err;
  void *p = NULL;
  OrtStatus *st = ort->GetTensorMutableData(tensor, &p);
  if (st) return status_error(st, "cannot read a tensor's memory");
  *data = p;
  *bytes = n * size;
  return NULL;
}

void ob_tensor_release(OrtValue *tensor) {
  if (tensor && ort) ort->ReleaseValue(tensor);
}

/* ---- IOBinding ---- */

char *ob_binding_create(ob_session *s, ob_binding **out) {
  ob_binding *b = calloc(1, sizeof *b);
  if (b == NULL) return errorf("out of memory creating an IO binding");
  OrtStatus *st = ort->CreateIoBinding(s->session, &b->binding);
  if (st) {
    free(b);
    return status_error(st, "cannot create an IO binding for %s", s->label);
  }
  b->session = s;
  *out = b;
  return NULL;
}

char *ob_binding_bind_input(ob_binding *b, const char *name, const OrtValue *tensor) {
  OrtStatus *st = ort->BindInput(b->binding, name, tensor);
  return st ? status_error(st, "cannot bind input '%s' of %s", name, b->session->label) : NULL;
}

char *ob_binding_bind_output(ob_binding *b, const char *name, const OrtValue *tensor) {
  OrtStatus *st = ort->BindOutput(b->binding, name, tensor);
  return st ? status_error(st, "cannot bind output '%s' of %s", name, b->session->label) : NULL;
}

char *ob_binding_bind_output_cpu(ob_binding *b, const char *name) {
  OrtStatus *st = ort->BindOutputToDevice(b->binding, name, cpu_memory);
  return st ? status_error(st, "cannot bind output '%s' of %s to the CPU", name, b->session->label) : NULL;
}

char *ob_binding_run(ob_binding *b) {
  OrtStatus *st = ort->RunWithBinding(b->session->session, NULL, b->binding);
  return st ? status_error(st, "cannot run %s", b->session->label) : NULL;
}

char *ob_binding_outputs(ob_binding *b, char ***names_out, OrtValue ***values_out, size_t *count_out) {
  char *buffer = NULL;
  size_t *lengths = NULL, count = 0, value_count = 0;
  OrtValue **values = NULL;
  OrtStatus *st = ort->GetBoundOutputNames(b->binding, allocator, &buffer, &lengths, &count);
  if (st) return status_error(st, "cannot read the bound output names of %s", b->session->label);
  char *err = NULL;
  char **names = NULL;
  OrtValue **copy = NULL;
  if (count > 0) {
    st = ort->GetBoundOutputValues(b->binding, allocator, &values, &value_count);
    if (st) err = status_error(st, "cannot read the bound outputs of %s", b->session->label);
    else if (value_count != count)
      err = errorf("%s has %zu bound output names but %zu values", b->session->label, count, value_count);
    if (!err) {
      names = calloc(count, sizeof *names);
      copy = calloc(count, sizeof *copy);
      if (names == NULL || copy == NULL) err = errorf("out of memory reading bound outputs");
    }
    size_t offset = 0;
    for (size_t i = 0; !err && i < count; i++) {
      names[i] = strndup(buffer + offset, lengths[i]);
      if (names[i] == NULL) err = errorf("out of memory reading bound outputs");
      offset += lengths[i];
    }
    if (!err) {
      memcpy(copy, values, count * sizeof *copy);
    } else {
      for (size_t i = 0; values && i < value_count; i++) ort->ReleaseValue(values[i]);
      ob_free_strings(names, count);
      free(copy);
      names = NULL;
      copy = NULL;
    }
  }
  OrtStatus *f;
  if (buffer && (f = ort->AllocatorFree(allocator, buffer)) != NULL) ort->ReleaseStatus(f);
  if (lengths && (f = ort->AllocatorFree(allocator, lengths)) != NULL) ort->ReleaseStatus(f);
  if (values && (f = ort->AllocatorFree(allocator, values)) != NULL) ort->ReleaseStatus(f);
  if (err) return err;
  *names_out = names;
  *values_out = copy;
  *count_out = count;
  return NULL;
}

void ob_binding_clear_inputs(ob_binding *b) { ort->ClearBoundInputs(b->binding); }
void ob_binding_clear_outputs(ob_binding *b) { ort->ClearBoundOutputs(b->binding); }

void ob_binding_release(ob_binding *b) {
  if (b == NULL) return;
  ort->ReleaseIoBinding(b->binding);
  free(b);
}
