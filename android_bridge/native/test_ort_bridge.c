/* Tests of ort_bridge.c without a JVM, meant to run under AddressSanitizer and UBSan with leak
 * checking (scripts/test-kotlin.sh). Usage: test_ort_bridge MODELS_DIR, where MODELS_DIR holds
 * tests/android_bridge/native_models.py's models. Ends with "native: N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ort_bridge.h"

static int passed, failed;
static const char *dir;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (cond) {                                                          \
      passed++;                                                          \
    } else {                                                             \
      failed++;                                                          \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                    \
  } while (0)

/* Expects success; prints and frees the error otherwise. */
#define OK(call)                                                                  \
  do {                                                                            \
    char *err_ = (call);                                                          \
    if (err_) {                                                                   \
      failed++;                                                                   \
      fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, err_);   \
      ob_free(err_);                                                              \
    } else {                                                                      \
      passed++;                                                                   \
    }                                                                             \
  } while (0)

/* Expects an error whose message contains `expected`. */
static void expect_error(char *err, const char *expected, int line) {
  if (err && strstr(err, expected) && !strchr(err, '\n')) {
    passed++;
    if (getenv("OB_TEST_VERBOSE")) printf("ok, error: %s\n", err);
  } else {
    failed++;
    fprintf(stderr, "FAIL line %d: expected an error with \"%s\", got %s\n", line, expected, err ? err : "success");
  }
  ob_free(err);
}
#define ERROR(call, expected) expect_error((call), (expected), __LINE__)

static char *model(const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static ob_session *open_model(const char *name) {
  ob_session *s = NULL;
  OK(ob_session_open_path(model(name), NULL, &s));
  return s;
}

static void test_version_and_providers(void) {
  CHECK(strlen(ob_version()) > 0);
  char **names = NULL;
  size_t n = 0;
  OK(ob_available_providers(&names, &n));
  int cpu = 0;
  for (size_t i = 0; i < n; i++) cpu |= strcmp(names[i], "CPUExecutionProvider") == 0;
  CHECK(cpu);
  ob_free_strings(names, n);
  CHECK(ob_element_size(1) == 4 && ob_element_size(7) == 8 && ob_element_size(8) == 0);
}

static void check_add(ob_session *s) {
  CHECK(ob_session_input_count(s) == 2 && ob_session_output_count(s) == 2);
  CHECK(strcmp(ob_session_input_name(s, 0), "a") == 0 && strcmp(ob_session_input_name(s, 1), "b") == 0);
  CHECK(strcmp(ob_session_output_name(s, 0), "sum") == 0 && strcmp(ob_session_output_name(s, 1), "prod") == 0);
  CHECK(ob_session_input_name(s, 2) == NULL);
  float a[3] = {1, 2, 3}, b[3] = {10, 20, 30};
  int64_t shape[1] = {3};
  OrtValue *ta = NULL, *tb = NULL, *out[2] = {NULL, NULL};
  OK(ob_tensor_wrap(a, sizeof a, 1, shape, 1, &ta));
  OK(ob_tensor_wrap(b, sizeof b, 1, shape, 1, &tb));
  const char *in_names[] = {"a", "b"}, *out_names[] = {"prod", "sum"};
  const OrtValue *ins[] = {ta, tb};
  OK(ob_session_run(s, in_names, ins, 2, out_names, 2, out));
  void *data = NULL;
  size_t bytes = 0;
  OK(ob_tensor_data(out[0], &data, &bytes));
  CHECK(bytes == 12 && ((float *)data)[2] == 90.0f);
  OK(ob_tensor_data(out[1], &data, &bytes));
  CHECK(bytes == 12 && ((float *)data)[0] == 11.0f && ((float *)data)[2] == 33.0f);
  int type = 0;
  size_t rank = 0;
  int64_t got[4];
  OK(ob_tensor_info(out[1], &type, &rank, got, 4));
  CHECK(type == 1 && rank == 1 && got[0] == 3);
  ob_tensor_release(out[0]);
  ob_tensor_release(out[1]);

  /* A wrong input name, a wrong output name. */
  const char *bad_in[] = {"a", "nope"};
  out[0] = NULL;
  ERROR(ob_session_run(s, bad_in, ins, 2, out_names, 1, out), "cannot run ");
  CHECK(out[0] == NULL);
  const char *bad_out[] = {"nope"};
  ERROR(ob_session_run(s, in_names, ins, 2, bad_out, 1, out), "cannot run ");
  ob_tensor_release(ta);
  ob_tensor_release(tb);
}

static void test_session_from_path(void) {
  ob_session *s = NULL;
  const char *keys[] = {"session.intra_op.allow_spinning"}, *values[] = {"0"};
  ob_provider cpu = {"CPU", NULL, NULL, 0};
  ob_session_options o = {1, 1, keys, values, 1, &cpu, 1};
  OK(ob_session_open_path(model("add.onnx"), &o, &s));
  if (s) check_add(s);
  ob_session_close(s);
}

static void *read_file(const char *path, size_t *length) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *data = malloc((size_t)n);
  if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *length = (size_t)n;
  return data;
}

static void test_session_from_bytes(void) {
  size_t length = 0;
  void *bytes = read_file(model("add.ort"), &length);
  CHECK(bytes != NULL);
  if (!bytes) return;
  const char *keys[] = {"session.use_ort_model_bytes_directly", "session.use_ort_model_bytes_for_initializers"};
  const char *values[] = {"1", "1"};
  ob_session_options o = {0, 99, keys, values, 2, NULL, 0};
  ob_session *s = NULL;
  OK(ob_session_open_bytes(bytes, length, &o, &s));
  if (s) check_add(s);
  ob_session_close(s);
  free(bytes);

  bytes = read_file(model("add.onnx"), &length);
  s = NULL;
  OK(ob_session_open_bytes(bytes, length, NULL, &s));
  if (s) check_add(s);
  ob_session_close(s);
  free(bytes);

  char garbage[16] = "not a model";
  ERROR(ob_session_open_bytes(garbage, sizeof garbage, NULL, &s), "cannot open model bytes: ");
  ERROR(ob_session_open_bytes(NULL, 0, NULL, &s), "cannot open model bytes: the buffer is empty");
}

static void test_session_errors(void) {
  ob_session *s = NULL;
  ERROR(ob_session_open_path("/nonexistent/decoder.ort", NULL, &s), "cannot open /nonexistent/decoder.ort: ");
  CHECK(s == NULL);
  ob_provider xnnpack = {"XNNPACK", NULL, NULL, 0};
  ob_session_options o = {0, 99, NULL, NULL, 0, &xnnpack, 1};
  ERROR(ob_session_open_path(model("add.onnx"), &o, &s), "XNNPACK is not in this onnxruntime library (");
  ob_provider nnapi = {"NNAPI", NULL, NULL, 0};
  o.providers = &nnapi;
  ERROR(ob_session_open_path(model("add.onnx"), &o, &s), "NNAPI is not in this onnxruntime library (");
  const char *k[] = {"use_fp17"}, *v[] = {"1"};
  ob_provider nnapi_bad = {"NNAPI", k, v, 1};
  o.providers = &nnapi_bad;
  ERROR(ob_session_open_path(model("add.onnx"), &o, &s), "unknown NNAPI option 'use_fp17'");
  ob_provider bogus = {"Bogus", NULL, NULL, 0};
  o.providers = &bogus;
  ERROR(ob_session_open_path(model("add.onnx"), &o, &s), "cannot add execution provider Bogus: ");
  ob_session_options level = {0, 5, NULL, NULL, 0, NULL, 0};
  ERROR(ob_session_open_path(model("add.onnx"), &level, &s), "graph optimization level must be 0, 1, 2 or 99");
  ob_session_options threads = {-1, 99, NULL, NULL, 0, NULL, 0};
  ERROR(ob_session_open_path(model("add.onnx"), &threads, &s), "intra-op threads must be >= 0");
  CHECK(s == NULL);
}

static void test_tensors(void) {
  OrtValue *t = NULL;
  float x = 0;
  ERROR(ob_tensor_wrap(&x, 4, 1, (int64_t[]){2}, 1, &t), "cannot wrap 4 bytes as a tensor of 2 elements");
  ERROR(ob_tensor_wrap(&x, 4, 8, NULL, 0, &t), "ONNX type 8");
  ERROR(ob_tensor_allocate(1, (int64_t[]){-2}, 1, &t), "negative");
  CHECK(t == NULL);

  /* Rank 0, wrapped and allocated. */
  x = 4.5f;
  OK(ob_tensor_wrap(&x, 4, 1, NULL, 0, &t));
  void *data = NULL;
  size_t bytes = 0, rank = 9;
  int type = 0;
  OK(ob_tensor_data(t, &data, &bytes));
  CHECK(data == &x && bytes == 4);
  OK(ob_tensor_info(t, &type, &rank, NULL, 0));
  CHECK(type == 1 && rank == 0);
  ob_tensor_release(t);
  OK(ob_tensor_allocate(7, NULL, 0, &t));
  OK(ob_tensor_data(t, &data, &bytes));
  CHECK(bytes == 8);
  if (data) *(int64_t *)data = 42;
  ob_tensor_release(t);

  /* Allocated with a shape, an empty one, and a large rank. */
  int64_t shape[3] = {2, 3, 4};
  OK(ob_tensor_allocate(10, shape, 3, &t));
  int64_t got[3] = {0, 0, 0};
  OK(ob_tensor_info(t, &type, &rank, got, 3));
  CHECK(type == 10 && rank == 3 && got[0] == 2 && got[1] == 3 && got[2] == 4);
  OK(ob_tensor_data(t, &data, &bytes));
  CHECK(bytes == 48);
  if (data) memset(data, 0, bytes);
  ob_tensor_release(t);
  int64_t empty[2] = {0, 5};
  OK(ob_tensor_allocate(1, empty, 2, &t));
  OK(ob_tensor_data(t, &data, &bytes));
  CHECK(bytes == 0);
  ob_tensor_release(t);
  int64_t tall[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 3};
  OK(ob_tensor_allocate(6, tall, 10, &t));
  OK(ob_tensor_data(t, &data, &bytes));
  CHECK(bytes == 12);
  ob_tensor_release(t);
}

/* state.onnx with one wrapped buffer bound as state and new_state: 2 * state + x, in place. */
static void test_binding_state(void) {
  ob_session *s = open_model("state.onnx");
  if (!s) return;
  ob_binding *b = NULL;
  OK(ob_binding_create(s, &b));
  if (!b) {
    ob_session_close(s);
    return;
  }
  float state[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  OrtValue *ts = NULL, *tx = NULL;
  OK(ob_tensor_wrap(state, sizeof state, 1, shape, 2, &ts));
  OK(ob_tensor_allocate(1, shape, 2, &tx));
  void *xd = NULL;
  size_t xb = 0;
  OK(ob_tensor_data(tx, &xd, &xb));
  for (int i = 0; xd && i < 6; i++) ((float *)xd)[i] = 1.0f;
  OK(ob_binding_bind_input(b, "state", ts));
  OK(ob_binding_bind_output(b, "new_state", ts));
  OK(ob_binding_bind_input(b, "x", tx));
  OK(ob_binding_bind_output_cpu(b, "total"));
  for (int step = 0; step < 2; step++) {
    OK(ob_binding_run(b));
    char **names = NULL;
    OrtValue **values = NULL;
    size_t n = 0;
    OK(ob_binding_outputs(b, &names, &values, &n));
    CHECK(n == 2);
    for (size_t i = 0; i < n; i++) {
      void *d = NULL;
      size_t bytes = 0;
      OK(ob_tensor_data(values[i], &d, &bytes));
      if (strcmp(names[i], "new_state") == 0) {
        CHECK(d == state); /* the bound buffer itself */
      } else {
        CHECK(strcmp(names[i], "total") == 0 && bytes == 4);
        /* step 0: 2*(21)+6 = 48; step 1: 2*48+6 = 102 */
        CHECK(fabsf(*(float *)d - (step == 0 ? 48.0f : 102.0f)) < 1e-4f);
      }
      ob_tensor_release(values[i]);
    }
    ob_free(values);
    ob_free_strings(names, n);
  }
  CHECK(state[0] == 7.0f && state[5] == 27.0f); /* (2*1+1)*2+1, (2*6+1)*2+1 */

  /* A wrong name, then cleared bindings: a run without inputs fails. */
  ERROR(ob_binding_bind_input(b, "nope", tx), "");
  ob_binding_clear_inputs(b);
  ob_binding_clear_outputs(b);
  char **names = NULL;
  OrtValue **values = NULL;
  size_t n = 7;
  OK(ob_binding_outputs(b, &names, &values, &n));
  CHECK(n == 0 && names == NULL && values == NULL);
  ERROR(ob_binding_run(b), "cannot run ");
  ob_binding_release(b);
  ob_tensor_release(ts);
  ob_tensor_release(tx);
  ob_session_close(s);
}

/* kv.onnx: ScatterElements writes one row per step into the shared past/present buffer. */
static void test_binding_kv(void) {
  ob_session *s = open_model("kv.onnx");
  if (!s) return;
  ob_binding *b = NULL;
  OK(ob_binding_create(s, &b));
  OrtValue *cache = NULL;
  int64_t cache_shape[4] = {1, 1, 4, 2}, step_shape[4] = {1, 1, 1, 2};
  OK(ob_tensor_allocate(1, cache_shape, 4, &cache));
  float *kv = NULL;
  size_t bytes = 0;
  OK(ob_tensor_data(cache, (void **)&kv, &bytes));
  if (!b || !kv) goto done;
  memset(kv, 0, bytes);
  OK(ob_binding_bind_input(b, "past", cache));
  OK(ob_binding_bind_output(b, "present", cache));
  OK(ob_binding_bind_output_cpu(b, "total"));
  for (int step = 0; step < 4; step++) {
    float row[2] = {(float)step + 1, (float)step + 1};
    int64_t index[2] = {step, step};
    OrtValue *tr = NULL, *ti = NULL;
    OK(ob_tensor_wrap(row, sizeof row, 1, step_shape, 4, &tr));
    OK(ob_tensor_wrap(index, sizeof index, 7, step_shape, 4, &ti));
    OK(ob_binding_bind_input(b, "new", tr));
    OK(ob_binding_bind_input(b, "index", ti));
    OK(ob_binding_run(b));
    for (int r = 0; r < 4; r++) CHECK(kv[2 * r] == (r <= step ? r + 1.0f : 0.0f));
    ob_tensor_release(tr);
    ob_tensor_release(ti);
  }
  char **names = NULL;
  OrtValue **values = NULL;
  size_t n = 0;
  OK(ob_binding_outputs(b, &names, &values, &n));
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], "total") == 0) {
      float *t = NULL;
      OK(ob_tensor_data(values[i], (void **)&t, &bytes));
      CHECK(t && *t == 20.0f); /* 2 * (1 + 2 + 3 + 4) */
    }
    ob_tensor_release(values[i]);
  }
  ob_free(values);
  ob_free_strings(names, n);
done:
  ob_binding_release(b);
  ob_tensor_release(cache);
  ob_session_close(s);
}

static void test_cast(void) {
  ob_session *s = open_model("cast.onnx");
  if (!s) return;
  int64_t ids[3] = {-1, 0, 5}, shape[1] = {3};
  OrtValue *t = NULL, *out[4] = {0};
  OK(ob_tensor_wrap(ids, sizeof ids, 7, shape, 1, &t));
  const char *in_names[] = {"ids"}, *out_names[] = {"ids32", "next", "half", "positive"};
  const OrtValue *ins[] = {t};
  OK(ob_session_run(s, in_names, ins, 1, out_names, 4, out));
  int expect_type[4] = {6, 7, 10, 9};
  size_t expect_bytes[4] = {12, 24, 6, 3};
  for (int i = 0; i < 4; i++) {
    int type = 0;
    size_t rank = 0, bytes = 0;
    void *d = NULL;
    OK(ob_tensor_info(out[i], &type, &rank, NULL, 0));
    OK(ob_tensor_data(out[i], &d, &bytes));
    CHECK(type == expect_type[i] && rank == 1 && bytes == expect_bytes[i]);
    if (i == 0) CHECK(((int32_t *)d)[0] == -1 && ((int32_t *)d)[2] == 5);
    if (i == 1) CHECK(((int64_t *)d)[2] == 6);
    if (i == 3) CHECK(((uint8_t *)d)[0] == 0 && ((uint8_t *)d)[2] == 1);
    ob_tensor_release(out[i]);
  }
  ob_tensor_release(t);
  ob_session_close(s);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODELS_DIR\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  test_version_and_providers();
  test_session_from_path();
  test_session_from_bytes();
  test_session_errors();
  test_tensors();
  test_binding_state();
  test_binding_kv();
  test_cast();
  printf("native: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
