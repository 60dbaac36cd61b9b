package io.github.qwenasredge

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
}
