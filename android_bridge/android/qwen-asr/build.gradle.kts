// The library: the same Kotlin sources the JVM tests run (android_bridge/kotlin/src/main) and the
// JNI library (android_bridge/native) built by CMake against the onnxruntime-android AAR's headers
// and libonnxruntime.so, which the AAR also packages into the app.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val onnxruntimeVersion: String by project
val onnxruntime: Configuration by configurations.creating

android {
    namespace = "io.github.qwenasredge"
    compileSdk = 35
    ndkVersion = "27.2.12479018"
    defaultConfig {
        minSdk = 24
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
        externalNativeBuild {
            cmake {
                // headers/ and jni/<abi>/ of the AAR, unpacked by unpackOnnxruntime below.
                arguments += "-DORT_AAR_DIR=" + layout.buildDirectory.dir("onnxruntime").get().asFile.path
            }
        }
        consumerProguardFiles("consumer-rules.pro")
    }
    externalNativeBuild {
        cmake { path = file("../../native/CMakeLists.txt") }
    }
    sourceSets["main"].kotlin.srcDir("../../kotlin/src/main/kotlin")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation("com.microsoft.onnxruntime:onnxruntime-android:$onnxruntimeVersion")
    onnxruntime("com.microsoft.onnxruntime:onnxruntime-android:$onnxruntimeVersion@aar")
}

// CMake needs the AAR's headers/ and jni/<abi>/libonnxruntime.so on disk before it configures.
val unpackOnnxruntime by tasks.registering(Copy::class) {
    from({ zipTree(onnxruntime.singleFile) }) { include("headers/**", "jni/**") }
    into(layout.buildDirectory.dir("onnxruntime"))
}
tasks.matching { it.name == "preBuild" || it.name.startsWith("configureCMake") || it.name.startsWith("buildCMake") }
    .configureEach { dependsOn(unpackOnnxruntime) }
// An IDE sync may configure CMake before any task ran: then run `./gradlew :qwen-asr:unpackOnnxruntime`
// once (CMakeLists.txt says so when the headers are missing).
