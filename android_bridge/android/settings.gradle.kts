// The Android build of android_bridge: the library module (Kotlin core + JNI over onnxruntime's
// C API) and a sample app. Built with Android Studio or `./gradlew` on a machine with the Android
// SDK and NDK; it is not built in this repository's CI (see android_bridge/README.md).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "qwen-asr-edge-android"
include(":qwen-asr", ":sample")
