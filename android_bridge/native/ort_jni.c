/* JNI exports of ort_bridge for the Kotlin object io.github.qwenasredge.ort.NativeOrt (see
 * NativeOrt.kt for the contract of each function). Handles are pointers in jlongs; 0 means closed
 * and throws IllegalStateException (the Kotlin wrappers check first, this is the backstop). Every
 * ort_bridge error becomes an io.github.qwenasredge.ort.OrtException with its one-line message. */
#define _GNU_SOURCE
#include <jni.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ort_bridge.h"

#define FN(name) Java_io_github_qwenasredge_ort_NativeOrt_##name

static void throw_class(JNIEnv *env, const char *cls, const char *message) {
  if ((*env)->ExceptionCheck(env)) return;
  jclass c = (*env)->FindClass(env, cls);
  if (c == NULL) return; /* NoClassDefFoundError is pending */
  (*env)->ThrowNew(env, c, message);
  (*env)->DeleteLocalRef(env, c);
}

/* Throws OrtException(err) and frees err; returns 1 when there was an error. */
static int failed(JNIEnv *env, char *err) {
  if (err == NULL) return 0;
  throw_class(env, "io/github/qwenasredge/ort/OrtException", err);
  ob_free(err);
  return 1;
}

static int closed(JNIEnv *env, jlong handle, const char *what) {
  if (handle != 0) return 0;
  char message[96];
  snprintf(message, sizeof message, "the %s is closed", what);
  throw_class(env, "java/lang/IllegalStateException", message);
  return 1;
}

static void out_of_memory(JNIEnv *env) { throw_class(env, "java/lang/OutOfMemoryError", "in the onnxruntime bridge"); }

/* A Java String[] as malloc'd C strings (modified UTF-8, which is UTF-8 for names without NUL or
 * characters outside the BMP); NULL with an exception pending on failure. An empty or null array
 * gives a non-NULL empty list. */
static char **c_strings(JNIEnv *env, jobjectArray array, size_t *count) {
  jsize n = array ? (*env)->GetArrayLength(env, array) : 0;
  char **list = calloc(n > 0 ? (size_t)n : 1, sizeof *list);
  if (list == NULL) {
    out_of_memory(env);
    return NULL;
  }
  for (jsize i = 0; i < n; i++) {
    jstring s = (jstring)(*env)->GetObjectArrayElement(env, array, i);
    if (s == NULL) {
      ob_free_strings(list, (size_t)i);
      throw_class(env, "java/lang/NullPointerException", "a null string");
      return NULL;
    }
    const char *chars = (*env)->GetStringUTFChars(env, s, NULL);
    list[i] = chars ? strdup(chars) : NULL;
    if (chars) (*env)->ReleaseStringUTFChars(env, s, chars);
    (*env)->DeleteLocalRef(env, s);
    if (list[i] == NULL) {
      ob_free_strings(list, (size_t)i);
      if (!(*env)->ExceptionCheck(env)) out_of_memory(env);
      return NULL;
    }
  }
  *count = (size_t)n;
  return list;
}

static jobjectArray java_strings(JNIEnv *env, char *const *names, size_t n) {
  jclass string_class = (*env)->FindClass(env, "java/lang/String");
  if (string_class == NULL) return NULL;
  jobjectArray array = (*env)->NewObjectArray(env, (jsize)n, string_class, NULL);
  (*env)->DeleteLocalRef(env, string_class);
  for (size_t i = 0; array && i < n; i++) {
    jstring s = (*env)->NewStringUTF(env, names[i]);
    if (s == NULL) return NULL;
    (*env)->SetObjectArrayElement(env, array, (jsize)i, s);
    (*env)->DeleteLocalRef(env, s);
  }
  return array;
}

/* A Java string (as UTF-8 bytes, so any path works) as a malloc'd C string. */
static char *c_path(JNIEnv *env, jbyteArray utf8) {
  jsize n = (*env)->GetArrayLength(env, utf8);
  char *s = malloc((size_t)n + 1);
  if (s == NULL) {
    out_of_memory(env);
    return NULL;
  }
  (*env)->GetByteArrayRegion(env, utf8, 0, n, (jbyte *)s);
  s[n] = '\0';
  return s;
}

JNIEXPORT jstring JNICALL FN(version)(JNIEnv *env, jclass cls) {
  (void)cls;
  return (*env)->NewStringUTF(env, ob_version());
}

JNIEXPORT jobjectArray JNICALL FN(availableProviders)(JNIEnv *env, jclass cls) {
  (void)cls;
  char **names = NULL;
  size_t n = 0;
  if (failed(env, ob_available_providers(&names, &n))) return NULL;
  jobjectArray array = java_strings(env, names, n);
  ob_free_strings(names, n);
  return array;
}

/* path (UTF-8 bytes) or buffer[offset, offset + length) (direct), with the options. */
JNIEXPORT jlong JNICALL FN(openSession)(JNIEnv *env, jclass cls, jbyteArray path, jobject buffer, jint offset,
                                        jint length, jint intra_op_threads, jint optimization_level,
                                        jobjectArray config_keys, jobjectArray config_values,
                                        jobjectArray provider_names, jobjectArray provider_keys,
                                        jobjectArray provider_values) {
  (void)cls;
  jlong result = 0;
  char *c_path_ = NULL, **ck = NULL, **cv = NULL, **pn = NULL;
  size_t nck = 0, ncv = 0, npn = 0;
  ob_provider *providers = NULL;
  size_t made = 0;
  if (path && (c_path_ = c_path(env, path)) == NULL) goto done;
  if ((ck = c_strings(env, config_keys, &nck)) == NULL) goto done;
  if ((cv = c_strings(env, config_values, &ncv)) == NULL) goto done;
  if ((pn = c_strings(env, provider_names, &npn)) == NULL) goto done;
  if (nck != ncv || (provider_keys && (size_t)(*env)->GetArrayLength(env, provider_keys) != npn) ||
      (provider_values && (size_t)(*env)->GetArrayLength(env, provider_values) != npn)) {
    throw_class(env, "java/lang/IllegalArgumentException", "keys and values differ in number");
    goto done;
  }
  providers = calloc(npn ? npn : 1, sizeof *providers);
  if (providers == NULL) {
    out_of_memory(env);
    goto done;
  }
  for (; made < npn; made++) {
    jobjectArray k = provider_keys ? (jobjectArray)(*env)->GetObjectArrayElement(env, provider_keys, (jsize)made) : NULL;
    jobjectArray v = provider_values ? (jobjectArray)(*env)->GetObjectArrayElement(env, provider_values, (jsize)made) : NULL;
    size_t nk = 0, nv = 0;
    char **keys = c_strings(env, k, &nk);
    char **values = keys ? c_strings(env, v, &nv) : NULL;
    if (k) (*env)->DeleteLocalRef(env, k);
    if (v) (*env)->DeleteLocalRef(env, v);
    if (values == NULL || nk != nv) {
      ob_free_strings(keys, nk);
      ob_free_strings(values, nv);
      if (!(*env)->ExceptionCheck(env))
        throw_class(env, "java/lang/IllegalArgumentException", "provider option keys and values differ in number");
      goto done;
    }
    providers[made] = (ob_provider){pn[made], (const char *const *)keys, (const char *const *)values, nk};
  }
  ob_session_options options = {intra_op_threads, optimization_level, (const char *const *)ck,
                                (const char *const *)cv, nck, providers, npn};
  ob_session *session = NULL;
  char *err;
  if (c_path_) {
    err = ob_session_open_path(c_path_, &options, &session);
  } else {
    char *data = buffer ? (*env)->GetDirectBufferAddress(env, buffer) : NULL;
    jlong capacity = buffer ? (*env)->GetDirectBufferCapacity(env, buffer) : -1;
    if (data == NULL || offset < 0 || length < 0 || (jlong)offset + length > capacity) {
      throw_class(env, "java/lang/IllegalArgumentException", "the model must be a direct ByteBuffer");
      goto done;
    }
    err = ob_session_open_bytes(data + offset, (size_t)length, &options, &session);
  }
  if (!failed(env, err)) result = (jlong)(intptr_t)session;
done:
  for (size_t i = 0; providers && i < made; i++) {
    ob_free_strings((char **)providers[i].keys, providers[i].count);
    ob_free_strings((char **)providers[i].values, providers[i].count);
  }
  free(providers);
  ob_free_strings(pn, npn);
  ob_free_strings(cv, ncv);
  ob_free_strings(ck, nck);
  free(c_path_);
  return result;
}

static jobjectArray session_names(JNIEnv *env, jlong handle, int outputs) {
  if (closed(env, handle, "session")) return NULL;
  ob_session *s = (ob_session *)(intptr_t)handle;
  size_t n = outputs ? ob_session_output_count(s) : ob_session_input_count(s);
  char **names = calloc(n ? n : 1, sizeof *names);
  if (names == NULL) {
    out_of_memory(env);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    names[i] = (char *)(outputs ? ob_session_output_name(s, i) : ob_session_input_name(s, i));
  jobjectArray array = java_strings(env, names, n);
  free(names); /* the strings belong to the session */
  return array;
}

JNIEXPORT jobjectArray JNICALL FN(sessionInputNames)(JNIEnv *env, jclass cls, jlong session) {
  (void)cls;
  return session_names(env, session, 0);
}

JNIEXPORT jobjectArray JNICALL FN(sessionOutputNames)(JNIEnv *env, jclass cls, jlong session) {
  (void)cls;
  return session_names(env, session, 1);
}

JNIEXPORT void JNICALL FN(closeSession)(JNIEnv *env, jclass cls, jlong session) {
  (void)env;
  (void)cls;
  ob_session_close((ob_session *)(intptr_t)session);
}

/* New tensors (handles) for output_names, in order. */
JNIEXPORT jlongArray JNICALL FN(run)(JNIEnv *env, jclass cls, jlong session, jobjectArray input_names,
                                     jlongArray inputs, jobjectArray output_names) {
  (void)cls;
  if (closed(env, session, "session")) return NULL;
  jlongArray result = NULL;
  size_t n_in = 0, n_out = 0;
  char **in = NULL, **out = NULL;
  const OrtValue **values = NULL;
  OrtValue **outputs = NULL;
  if ((in = c_strings(env, input_names, &n_in)) == NULL) goto done;
  if ((out = c_strings(env, output_names, &n_out)) == NULL) goto done;
  if ((size_t)(*env)->GetArrayLength(env, inputs) != n_in) {
    throw_class(env, "java/lang/IllegalArgumentException", "input names and tensors differ in number");
    goto done;
  }
  values = calloc(n_in ? n_in : 1, sizeof *values);
  outputs = calloc(n_out ? n_out : 1, sizeof *outputs);
  jlong *handles = calloc(n_in ? n_in : 1, sizeof *handles);
  jlong *out_handles = calloc(n_out ? n_out : 1, sizeof *out_handles);
  if (values == NULL || outputs == NULL || handles == NULL || out_handles == NULL) {
    free(handles);
    free(out_handles);
    out_of_memory(env);
    goto done;
  }
  (*env)->GetLongArrayRegion(env, inputs, 0, (jsize)n_in, handles);
  int ok = 1;
  for (size_t i = 0; i < n_in; i++) {
    values[i] = (const OrtValue *)(intptr_t)handles[i];
    if (values[i] == NULL) ok = !closed(env, 0, "tensor");
  }
  free(handles);
  if (ok && !failed(env, ob_session_run((ob_session *)(intptr_t)session, (const char *const *)in, values, n_in,
                                        (const char *const *)out, n_out, outputs))) {
    for (size_t i = 0; i < n_out; i++) out_handles[i] = (jlong)(intptr_t)outputs[i];
    result = (*env)->NewLongArray(env, (jsize)n_out);
    if (result) {
      (*env)->SetLongArrayRegion(env, result, 0, (jsize)n_out, out_handles);
    } else {
      for (size_t i = 0; i < n_out; i++) ob_tensor_release(outputs[i]);
    }
  }
  free(out_handles);
done:
  free(values);
  free(outputs);
  ob_free_strings(in, n_in);
  ob_free_strings(out, n_out);
  return result;
}

static int64_t *c_shape(JNIEnv *env, jlongArray shape, size_t *rank) {
  jsize n = (*env)->GetArrayLength(env, shape);
  int64_t *dims = calloc(n ? (size_t)n : 1, sizeof *dims);
  if (dims == NULL) {
    out_of_memory(env);
    return NULL;
  }
  (*env)->GetLongArrayRegion(env, shape, 0, n, (jlong *)dims);
  *rank = (size_t)n;
  return dims;
}

/* buffer[offset, offset + length) (direct) as a tensor, no copy; the caller keeps buffer alive. */
JNIEXPORT jlong JNICALL FN(wrapTensor)(JNIEnv *env, jclass cls, jobject buffer, jint offset, jint length,
                                       jint type, jlongArray shape) {
  (void)cls;
  char *data = (*env)->GetDirectBufferAddress(env, buffer);
  jlong capacity = (*env)->GetDirectBufferCapacity(env, buffer);
  if ((data == NULL && capacity != 0) || offset < 0 || length < 0 || (jlong)offset + length > capacity) {
    throw_class(env, "java/lang/IllegalArgumentException", "a tensor wraps a direct ByteBuffer");
    return 0;
  }
  size_t rank = 0;
  int64_t *dims = c_shape(env, shape, &rank);
  if (dims == NULL) return 0;
  OrtValue *tensor = NULL;
  char *err = ob_tensor_wrap(data ? data + offset : NULL, (size_t)length, type, dims, rank, &tensor);
  free(dims);
  return failed(env, err) ? 0 : (jlong)(intptr_t)tensor;
}

JNIEXPORT jlong JNICALL FN(allocateTensor)(JNIEnv *env, jclass cls, jint type, jlongArray shape) {
  (void)cls;
  size_t rank = 0;
  int64_t *dims = c_shape(env, shape, &rank);
  if (dims == NULL) return 0;
  OrtValue *tensor = NULL;
  char *err = ob_tensor_allocate(type, dims, rank, &tensor);
  free(dims);
  return failed(env, err) ? 0 : (jlong)(intptr_t)tensor;
}

JNIEXPORT jint JNICALL FN(tensorType)(JNIEnv *env, jclass cls, jlong tensor) {
  (void)cls;
  if (closed(env, tensor, "tensor")) return 0;
  int type = 0;
  size_t rank = 0;
  return failed(env, ob_tensor_info((const OrtValue *)(intptr_t)tensor, &type, &rank, NULL, 0)) ? 0 : type;
}

JNIEXPORT jlongArray JNICALL FN(tensorShape)(JNIEnv *env, jclass cls, jlong tensor) {
  (void)cls;
  if (closed(env, tensor, "tensor")) return NULL;
  const OrtValue *t = (const OrtValue *)(intptr_t)tensor;
  int type = 0;
  size_t rank = 0;
  if (failed(env, ob_tensor_info(t, &type, &rank, NULL, 0))) return NULL;
  int64_t *dims = calloc(rank ? rank : 1, sizeof *dims);
  if (dims == NULL) {
    out_of_memory(env);
    return NULL;
  }
  jlongArray result = NULL;
  if (!failed(env, ob_tensor_info(t, &type, &rank, dims, rank))) {
    result = (*env)->NewLongArray(env, (jsize)rank);
    if (result) (*env)->SetLongArrayRegion(env, result, 0, (jsize)rank, (const jlong *)dims);
  }
  free(dims);
  return result;
}

/* The tensor's memory as a direct ByteBuffer (big-endian as every new ByteBuffer; the Kotlin side
 * sets the native order), or null when it has no bytes. */
JNIEXPORT jobject JNICALL FN(tensorBuffer)(JNIEnv *env, jclass cls, jlong tensor) {
  (void)cls;
  if (closed(env, tensor, "tensor")) return NULL;
  void *data = NULL;
  size_t bytes = 0;
  if (failed(env, ob_tensor_data((OrtValue *)(intptr_t)tensor, &data, &bytes))) return NULL;
  if (bytes == 0 || data == NULL) return NULL;
  if (bytes > 0x7fffffff) {
    throw_class(env, "java/lang/IllegalStateException", "the tensor is larger than 2 GiB, a ByteBuffer's limit");
    return NULL;
  }
  return (*env)->NewDirectByteBuffer(env, data, (jlong)bytes);
}

JNIEXPORT void JNICALL FN(releaseTensor)(JNIEnv *env, jclass cls, jlong tensor) {
  (void)env;
  (void)cls;
  ob_tensor_release((OrtValue *)(intptr_t)tensor);
}

JNIEXPORT jlong JNICALL FN(createBinding)(JNIEnv *env, jclass cls, jlong session) {
  (void)cls;
  if (closed(env, session, "session")) return 0;
  ob_binding *b = NULL;
  return failed(env, ob_binding_create((ob_session *)(intptr_t)session, &b)) ? 0 : (jlong)(intptr_t)b;
}

/* kind: 0 input, 1 output, 2 output to the CPU (tensor unused). */
JNIEXPORT void JNICALL FN(bind)(JNIEnv *env, jclass cls, jlong binding, jint kind, jstring name, jlong tensor) {
  (void)cls;
  if (closed(env, binding, "IO binding") || (kind != 2 && closed(env, tensor, "tensor"))) return;
  const char *n = (*env)->GetStringUTFChars(env, name, NULL);
  if (n == NULL) return;
  ob_binding *b = (ob_binding *)(intptr_t)binding;
  const OrtValue *t = (const OrtValue *)(intptr_t)tensor;
  char *err = kind == 0   ? ob_binding_bind_input(b, n, t)
              : kind == 1 ? ob_binding_bind_output(b, n, t)
                          : ob_binding_bind_output_cpu(b, n);
  (*env)->ReleaseStringUTFChars(env, name, n);
  failed(env, err);
}

JNIEXPORT void JNICALL FN(runBinding)(JNIEnv *env, jclass cls, jlong binding) {
  (void)cls;
  if (closed(env, binding, "IO binding")) return;
  failed(env, ob_binding_run((ob_binding *)(intptr_t)binding));
}

/* {String[] names, long[] tensors}: the bound outputs as new tensors. */
JNIEXPORT jobjectArray JNICALL FN(boundOutputs)(JNIEnv *env, jclass cls, jlong binding) {
  (void)cls;
  if (closed(env, binding, "IO binding")) return NULL;
  char **names = NULL;
  OrtValue **values = NULL;
  size_t n = 0;
  if (failed(env, ob_binding_outputs((ob_binding *)(intptr_t)binding, &names, &values, &n))) return NULL;
  jobjectArray result = NULL;
  jobjectArray name_array = java_strings(env, names, n);
  jlongArray handles = name_array ? (*env)->NewLongArray(env, (jsize)n) : NULL;
  jclass object_class = handles ? (*env)->FindClass(env, "java/lang/Object") : NULL;
  if (object_class) result = (*env)->NewObjectArray(env, 2, object_class, NULL);
  if (result) {
    for (size_t i = 0; i < n; i++) {
      jlong h = (jlong)(intptr_t)values[i];
      (*env)->SetLongArrayRegion(env, handles, (jsize)i, 1, &h);
    }
    (*env)->SetObjectArrayElement(env, result, 0, name_array);
    (*env)->SetObjectArrayElement(env, result, 1, handles);
  } else {
    for (size_t i = 0; i < n; i++) ob_tensor_release(values[i]);
  }
  if (object_class) (*env)->DeleteLocalRef(env, object_class);
  if (handles) (*env)->DeleteLocalRef(env, handles);
  if (name_array) (*env)->DeleteLocalRef(env, name_array);
  ob_free(values);
  ob_free_strings(names, n);
  return result;
}

JNIEXPORT void JNICALL FN(clearBinding)(JNIEnv *env, jclass cls, jlong binding, jboolean outputs) {
  (void)cls;
  if (closed(env, binding, "IO binding")) return;
  if (outputs) ob_binding_clear_outputs((ob_binding *)(intptr_t)binding);
  else ob_binding_clear_inputs((ob_binding *)(intptr_t)binding);
}

JNIEXPORT void JNICALL FN(releaseBinding)(JNIEnv *env, jclass cls, jlong binding) {
  (void)env;
  (void)cls;
  ob_binding_release((ob_binding *)(intptr_t)binding);
}
