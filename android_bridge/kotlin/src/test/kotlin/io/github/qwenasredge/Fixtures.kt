package io.github.qwenasredge

import io.github.qwenasredge.text.Json
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** What the tests of this package read: the folder `tests/android_bridge/fixtures.py` writes (-Dqwenasr.fixtures). */
internal object Fixtures {
    val dir = File(System.getProperty("qwenasr.fixtures") ?: error("set -Dqwenasr.fixtures"))

    /** A float32 little-endian file as samples. */
    fun floats(file: File): FloatArray {
        val b = ByteBuffer.wrap(file.readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
        return FloatArray(b.remaining()).also { b.get(it) }
    }

    /** A JSON list of numbers as ints. */
    fun ints(value: Any?): IntArray = (value as List<*>).map { (it as Number).toInt() }.toIntArray()

    /** A recording the Python runtime ran (`FOLDER/NAME.json` and its .pcm): its cases, samples and bundle NAME. */
    class Recording(val name: String, val cases: List<Map<String, Any?>>, val audio: FloatArray, val bundle: File)

    /** The recordings in `FOLDER` ("stream", "long"), by name. */
    fun recordings(folder: String): List<Recording> =
        File(dir, folder).listFiles { f -> f.name.endsWith(".json") }!!.sortedBy { it.name }.map { file ->
            @Suppress("UNCHECKED_CAST")
            val golden = Json.parse(file.readText()) as Map<String, Any?>
            @Suppress("UNCHECKED_CAST")
            val cases = golden["cases"] as List<Map<String, Any?>>
            val bundle = File(dir, "bundles/" + file.name.removeSuffix(".json"))
            Recording(file.name, cases, floats(File(file.parentFile, golden["pcm"] as String)), bundle)
        }
}
